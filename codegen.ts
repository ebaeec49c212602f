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
      presetConfig: { fragmentMasking: false },
      config: { useTypeImports: true, enumsAsTypes: true, scalars: { DateTime: "string", JSON: "unknown" } },
    },
  },
};

export default config;
