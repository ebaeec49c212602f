import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUERY_LIMITS } from "../src/http/plugins/query-limits.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { createUser } from "./support/users.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

/** `viewer { partner { members { edges { node { partner { … } } } } } }`, nested `levels` times. */
function nestedQuery(levels: number): string {
  let selection = "id";
  for (let i = 0; i < levels; i++) selection = `partner { members { edges { node { ${selection} } } } }`;
  return `{ viewer { ${selection} } }`;
}

describe("operation limits", () => {
  it("runs an operation as deep as the limit allows", async () => {
    // Each level adds four to the depth: partner, members, edges, node.
    const levels = Math.floor((QUERY_LIMITS.depth - 2) / 4);
    const response = await server.gql(nestedQuery(levels));
    expect(response.errors).toBeUndefined();
  });

  it("refuses a deeper one before running it", async () => {
    const response = await server.gql(nestedQuery(Math.ceil(QUERY_LIMITS.depth / 4) + 1));
    expect(errorCodes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(response.errors![0]!.message).toMatch(/depth/i);
  });

  it("refuses more aliases than the limit", async () => {
    const aliases = Array.from({ length: QUERY_LIMITS.aliases + 1 }, (_, i) => `a${i}: viewer { id }`).join(" ");
    const response = await server.gql(`{ ${aliases} }`);
    expect(errorCodes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(response.errors![0]!.message).toMatch(/alias/i);
  });

  it("still answers introspection, which GraphiQL and codegen need", async () => {
    const response = await server.gql(
      `{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }`,
    );
    expect(response.errors).toBeUndefined();
  });
});

describe("page sizes", () => {
  it("clamps a connection page to 100 items however many are asked for", async () => {
    const prisma = server.app.services.prisma;
    await prisma.partnerOrganization.createMany({ data: Array.from({ length: 105 }, (_, i) => ({ name: `Bulk ${i}` })) });
    const admin = await createUser(server, "limits-admin", "admin");
    const response = await server.gql(`{ partners(first: 1000) { totalCount edges { node { id } } } }`, {}, admin.token);
    expect(response.errors).toBeUndefined();
    expect(response.data!.partners.totalCount).toBe(105);
    expect(response.data!.partners.edges).toHaveLength(100);
  });
});

describe("password checks", () => {
  it("refuses an operation that tries several logins at once (password spraying by aliases)", async () => {
    const attempts = ["one", "two", "three"]
      .map((guess, i) => `a${i}: login(input: { login: "someone", password: "${guess}-guess-password" }) { token }`)
      .join(" ");
    const response = await server.gql(`mutation { ${attempts} }`);
    expect(errorCodes(response)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    const viaFragment = await server.gql(
      `mutation { ...Twice } fragment Twice on Mutation { a: login(input: { login: "x", password: "p-p-p-p-p-p" }) { token } b: signUp(input: { username: "x", email: "x@example.com", password: "p-p-p-p-p-p" }) { token } }`,
    );
    expect(errorCodes(viaFragment)).toEqual(["GRAPHQL_VALIDATION_FAILED"]);
    expect(await server.app.services.prisma.user.count({ where: { username: "x" } })).toBe(0);
  });
});
