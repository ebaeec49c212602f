import { readFileSync } from "node:fs";
import { buildSchema as buildSchemaFromSdl, printSchema } from "graphql";
import { describe, expect, it } from "vitest";
import { buildSchema } from "../src/schema/index.js";

describe("schema.graphql", () => {
  it("is the schema the code builds (run `npm run codegen` after changing the schema)", () => {
    const committed = printSchema(buildSchemaFromSdl(readFileSync(new URL("../schema.graphql", import.meta.url), "utf8")));
    expect(committed).toEqual(printSchema(buildSchema()));
  });
});
