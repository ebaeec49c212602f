/// <reference types="vite/client" />
import { getNamedType, isObjectType } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSchema } from "../src/schema/index.js";
import { ACTORS, createWorld, defaultAllowed, type MatrixOperation, type MatrixRow, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";
import { sseStream, triggerUntilReceived } from "./support/streams.js";

// Each domain keeps its rows beside the others in test/matrix/*.ts (export default MatrixRow[]).
const modules = import.meta.glob<{ default: MatrixRow[] }>("./matrix/*.ts", { eager: true });
const rows = Object.values(modules).flatMap((module) => module.default);

let server: TestServer;
let world: World;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
});
afterAll(async () => {
  await server?.close();
});

describe("every root field has a rule", () => {
  it("has at least one matrix row for each query, mutation and subscription", () => {
    const schema = buildSchema();
    const rootFields = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]
      .filter((type) => type && isObjectType(getNamedType(type)))
      .flatMap((type) => Object.keys(type!.getFields()).map((field) => `${type!.name}.${field}`));
    const covered = new Set(rows.map((row) => row.field));
    expect(rootFields.filter((field) => !covered.has(field))).toEqual([]);
  });
});

describe.each(rows.map((row) => [`${row.field}: ${row.case}`, row] as const))("%s", (_name, row) => {
  it.each(ACTORS.map((actor) => [actor, row.allow.includes(actor)] as const))(
    "%s allowed=%s",
    async (actor, expected) => {
      const operation = await row.operation(world, actor);
      const token = "token" in operation ? operation.token : world.token(actor);
      const response = operation.query.trimStart().startsWith("subscription")
        ? await firstStreamed(server, operation, token)
        : await server.gql(operation.query, operation.variables, token);
      const allowed = (row.allowed ?? defaultAllowed)(response, world, actor);
      expect(allowed, JSON.stringify(response)).toBe(expected);
      if (!expected) {
        if (row.denied) row.denied(response, world, actor);
        else if (operation.query.trimStart().startsWith("mutation")) {
          expect(errorCodes(response)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
        }
      }
    },
  );
});

/** A subscription's first streamed result over SSE: its denial, or the first event a trigger caused. */
async function firstStreamed(server: TestServer, operation: MatrixOperation, token: string | undefined) {
  const stream = sseStream(server.url, operation.query, operation.variables, token);
  try {
    const first = await triggerUntilReceived(stream, operation.trigger ?? (async () => {}), 50);
    return first ?? ({ data: null } satisfies GraphQLResponse);
  } finally {
    stream.close();
  }
}
