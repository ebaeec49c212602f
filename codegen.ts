import { createHash } from "node:crypto";
import type { CodegenConfig } from "@graphql-codegen/cli";
import { printSchema } from "graphql";
import { buildSchema } from "./src/schema/index.js";

// The schema comes from the code (Pothos), so the committed schema.graphql is always what the
// server serves; test/schema.test.ts fails when the two differ.
const schema = printSchema(buildSchema());

const config: CodegenConfig = {
  emitLegacyCommonJSImports: false,
  schema,
  documents: ["test/documents/**/*.graphql"],
  generates: {
    "schema.graphql": { plugins: ["schema-ast"], config: { includeDirectives: true } },
    "test/generated/": {
      preset: "client",
      // persisted-documents.json: the manifest a server with PERSISTED_OPERATIONS_FILE loads, keyed
      // by the plain hex sha256 that clients send as `extensions.persistedQuery.sha256Hash`.
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: { hashAlgorithm: (document: string) => createHash("sha256").update(document).digest("hex") },
      },
      config: { useTypeImports: true, enumsAsTypes: true, scalars: { DateTime: "string", JSON: "unknown" } },
    },
  },
};

export default config;
