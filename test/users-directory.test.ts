import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";

const USERS = /* GraphQL */ `
  query ($search: String, $role: Role, $partnerId: ID, $first: Int, $after: String) {
    users(search: $search, role: $role, partnerId: $partnerId, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id username email role } }
    }
  }
`;

interface UsersPage {
  users: {
    totalCount: number;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
    edges: Array<{ node: { id: string; username: string; email: string | null; role: string } }>;
  };
}

let server: TestServer;
let world: World;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
  const prisma = server.app.services.prisma;
  // Names whose characters are LIKE wildcards, to show a search matches them literally.
  for (const [username, email] of [
    ["dir_one", "first.person@example.test"],
    ["dirXone", "second%person@example.test"],
    ["dir-two", "third_person@sub.example.test"],
    ["Zed", "dir_zed@example.test"],
  ] as const) {
    await prisma.user.create({ data: { username, email, password: null, role: "developer", partnerId: world.partnerA.id } });
  }
});
afterAll(async () => {
  await server?.close();
});

async function list(token: string | undefined, variables: Record<string, unknown>) {
  const response = await server.gql<UsersPage>(USERS, variables, token);
  expect(response.errors).toBeUndefined();
  return response.data!.users;
}
const names = (page: UsersPage["users"]) => page.edges.map((edge) => edge.node.username);

describe("users directory", () => {
  it("finds people by the literal start of their username or email, ignoring case", async () => {
    const admin = world.users.admin.token;
    expect(names(await list(admin, { search: "DIR_" }))).toEqual(["dir_one", "Zed"]);
    expect((await list(admin, { search: "dir_" })).totalCount).toBe(2);
    expect(names(await list(admin, { search: "dir" })).sort()).toEqual(["Zed", "dir-two", "dir_one", "dirXone"].sort());
    expect(names(await list(admin, { search: "second%" }))).toEqual(["dirXone"]);
    expect(names(await list(admin, { search: "%" }))).toEqual([]);
    expect(names(await list(admin, { search: "_" }))).toEqual([]);
    // A prefix, not a substring.
    expect(names(await list(admin, { search: "person" }))).toEqual([]);
    expect(errorCodes(await server.gql(USERS, { search: "x".repeat(300) }, admin))).toEqual(["BAD_USER_INPUT"]);
  });

  it("filters by role and partner, and pages with a total matching the filter", async () => {
    const support = world.users.support.token;
    const partnerA = await list(support, { partnerId: world.partnerA.globalId, role: "developer" });
    expect(partnerA.totalCount).toBe(5); // developerA and the four above
    expect(partnerA.edges.every((edge) => edge.node.role === "developer")).toBe(true);

    const seen: string[] = [];
    let after: string | null = null;
    let total = 0;
    do {
      const page: UsersPage["users"] = await list(support, { first: 3, after });
      total = page.totalCount;
      seen.push(...names(page));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
    expect(total).toBe(await server.app.services.prisma.user.count());
    expect((await list(support, { role: "admin" })).edges.map((edge) => edge.node.id)).toEqual([world.users.admin.globalId]);
  });

  it("shows a partnerAdmin its own partner's members only, and nobody to a developer", async () => {
    const own = await list(world.users.partnerAdminA.token, {});
    expect(own.totalCount).toBe(6);
    expect(names(own)).toContain("m-developera");
    expect(own.edges.every((edge) => edge.node.email !== null)).toBe(true);
    expect(await list(world.users.partnerAdminA.token, { partnerId: world.partnerB.globalId })).toMatchObject({ totalCount: 0, edges: [] });
    expect(await list(world.users.partnerAdminA.token, { role: "admin" })).toMatchObject({ totalCount: 0, edges: [] });
    expect(await list(world.users.developerA.token, {})).toMatchObject({ totalCount: 0, edges: [] });
    expect(await list(world.users.noPartner.token, {})).toMatchObject({ totalCount: 0, edges: [] });
    expect(errorCodes(await server.gql(USERS, {}))).toEqual(["UNAUTHENTICATED"]);
  });
});
