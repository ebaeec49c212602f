// The read path's database work, watched on the wire between the server and PostgreSQL: who the
// viewer is costs no statement once a session is known, a list with its relations is one
// statement, and no read ever loads a password hash or a key hash.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IN_MEMORY, startEmbeddedPostgres, type EmbeddedPostgres } from "../src/db/embedded.js";
import { createTestDatabase, TEST_DATABASE_URL, TEST_REDIS_URL, type TestDatabase } from "./support/database.js";
import { startStatementProxy, type StatementProxy } from "./support/pg-proxy.js";
import { HAS_REDIS_SERVER, OwnRedis } from "./support/redis.js";
import { errorCodes, pubsubReaches, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { createKey, createPartner } from "./support/usage.js";
import { createUser, TEST_PASSWORD, type SignedInUser } from "./support/users.js";

const KEYS_QUERY = /* GraphQL */ `
  query ($after: String) {
    apiKeys(first: 20, after: $after) {
      edges { node { keyName tokenPrefix scopes partner { name } createdBy { username } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;
const HASH_COLUMNS = /"(password|secretHash|previousSecretHash)"/;

let proxy: StatementProxy;
let embedded: EmbeddedPostgres | undefined;
let database: TestDatabase | undefined;
let server: TestServer;
let partnerAdmin: SignedInUser;

beforeAll(async () => {
  // The proxy sits in front of the database either way: the machine's PostgreSQL, or an embedded
  // one served on loopback (one connection, as the server itself uses for it).
  let target: string;
  if (TEST_DATABASE_URL) {
    database = await createTestDatabase();
    target = database.url!;
  } else {
    embedded = await startEmbeddedPostgres(IN_MEMORY);
    target = embedded.url;
  }
  proxy = await startStatementProxy(target);
  server = await startTestServer({
    database: { url: proxy.url, drop: async () => {} },
    env: { DATABASE_POOL_SIZE: TEST_DATABASE_URL ? "10" : "1" },
  });
  const partner = await createPartner(server, "Read Path Freight");
  partnerAdmin = await createUser(server, "read-path-admin", "partnerAdmin", partner.id);
  for (let i = 0; i < 25; i++) await createKey(server, partner.id, partnerAdmin.id, { keyName: `key-${i}` });
});

afterAll(async () => {
  await server?.close();
  await proxy?.close();
  await database?.drop();
  await embedded?.close();
});

/** Runs one operation and answers it with the statements it made the server run. */
async function watched(query: string, variables: Record<string, unknown>, token: string) {
  const before = proxy.statements;
  const firstText = proxy.texts.length;
  const response = await server.gql(query, variables, token);
  return { response, statements: proxy.statements - before, texts: proxy.texts.slice(firstText) };
}

describe("the read path", () => {
  it("answers who the viewer is without a database statement once the session is known", async () => {
    const first = await watched(`{ viewer { id username role } }`, {}, partnerAdmin.token);
    expect(first.response.data?.viewer).toMatchObject({ username: "read-path-admin", role: "partnerAdmin" });
    const again = await watched(`{ viewer { id username role } }`, {}, partnerAdmin.token);
    expect(again.response.data?.viewer).toEqual(first.response.data?.viewer);
    expect(again.statements).toBe(0);
    // A field the session does not carry is read, once.
    const email = await watched(`{ viewer { email } }`, {}, partnerAdmin.token);
    expect(email.response.data?.viewer).toEqual({ email: "read-path-admin@example.test" });
    expect(email.statements).toBe(1);
  });

  it("loads a page of keys with their partner and creator in one statement, the next page too", async () => {
    await watched(`{ __typename }`, {}, partnerAdmin.token);
    const page = await watched(KEYS_QUERY, {}, partnerAdmin.token);
    const connection = page.response.data?.apiKeys;
    expect(connection.edges).toHaveLength(20);
    expect(connection.edges[0].node).toMatchObject({
      partner: { name: "Read Path Freight" },
      createdBy: { username: "read-path-admin" },
    });
    expect(page.statements).toBe(1);

    const next = await watched(KEYS_QUERY, { after: connection.pageInfo.endCursor }, partnerAdmin.token);
    expect(next.response.data?.apiKeys.edges).toHaveLength(5);
    expect(next.statements).toBe(1);
  });

  it("never reads a password hash or a key hash to answer a read", async () => {
    const reads = [
      KEYS_QUERY,
      `{ viewer { id username email role createdAt partner { name members { edges { node { username email } } } } } }`,
      `{ partners(first: 5) { edges { node { name primaryContact { username } apiKeys(first: 5) { edges { node { keyName createdBy { username email } events(first: 5) { edges { node { action } } } } } } } } } }`,
      `{ apiKeys(first: 5) { edges { node { id keyName lastUsedAt expiresAt revokedAt isActive usageLogs { edges { node { endpoint } } } } } } }`,
      `{ usageLogs(first: 5) { edges { node { endpoint apiKey { keyName createdBy { username } } partner { name } } } } }`,
    ];
    const texts: string[] = [];
    for (const query of reads) {
      const { response, texts: seen } = await watched(query, {}, partnerAdmin.token);
      expect(response.errors, query).toBeUndefined();
      texts.push(...seen);
    }
    expect(texts.length).toBeGreaterThan(0);
    expect(texts.filter((text) => HASH_COLUMNS.test(text))).toEqual([]);
  });

  it("still refuses a token from the next request on after logout, with the session cached", async () => {
    const user = await createUser(server, "read-path-logout", "developer");
    await server.gql(`{ viewer { id } }`, {}, user.token);
    expect((await server.gql(`mutation { logout }`, {}, user.token)).data?.logout).toBe(true);
    const after = await watched(`{ viewer { id } }`, {}, user.token);
    expect(errorCodes(after.response)).toEqual(["UNAUTHENTICATED"]);
    // An ended session is remembered as ended: asking again costs no statement either.
    const again = await watched(`{ viewer { id } }`, {}, user.token);
    expect(errorCodes(again.response)).toEqual(["UNAUTHENTICATED"]);
    expect(again.statements).toBe(0);
  });

  it("refuses the old rights from the next request on after a role change, with the session cached", async () => {
    const admin = await createUser(server, "read-path-root", "admin");
    const partner = await createPartner(server, "Read Path Other");
    const member = await createUser(server, "read-path-member", "developer", partner.id);
    expect((await server.gql(`{ viewer { role } }`, {}, member.token)).data?.viewer.role).toBe("developer");
    const promoted = await server.gql(
      `mutation ($id: ID!) { setUserRole(userId: $id, role: partnerAdmin) { role } }`,
      { id: member.globalId },
      admin.token,
    );
    expect(promoted.errors).toBeUndefined();
    expect(errorCodes(await server.gql(`{ viewer { role } }`, {}, member.token))).toEqual(["UNAUTHENTICATED"]);
    const login = await server.gql(
      `mutation ($input: LoginInput!) { login(input: $input) { token } }`,
      { input: { login: "read-path-member", password: TEST_PASSWORD } },
    );
    const fresh = login.data?.login.token as string;
    expect((await server.gql(`{ viewer { role } }`, {}, fresh)).data?.viewer.role).toBe("partnerAdmin");
  });
});

describe.skipIf(!TEST_REDIS_URL || !TEST_DATABASE_URL)("sessions cached by two instances over Redis", () => {
  it("refuses on instance 2, right after logout on instance 1, a session instance 2 had cached", async () => {
    const shared = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ database: shared, redis: true, env });
    const two = await startTestServer({ database: shared, redis: true, env });
    try {
      for (let round = 0; round < 20; round++) {
        const user = await createUser(one, `two-instances-${round}`, "developer");
        // Cached on instance 2 (its second request costs no statement there).
        expect((await two.gql(`{ viewer { username } }`, {}, user.token)).data?.viewer.username).toBe(`two-instances-${round}`);
        expect((await two.gql(`{ viewer { username } }`, {}, user.token)).data?.viewer.username).toBe(`two-instances-${round}`);
        expect((await one.gql(`mutation { logout }`, {}, user.token)).data?.logout).toBe(true);
        expect(errorCodes(await two.gql(`{ viewer { username } }`, {}, user.token))).toEqual(["UNAUTHENTICATED"]);
      }
    } finally {
      await two.close();
      await one.close();
      await shared.drop();
    }
  });
});

describe.skipIf(!TEST_DATABASE_URL || !HAS_REDIS_SERVER)("sessions cached while Redis is away", () => {
  it("are not trusted while a logout elsewhere could not arrive, and are cached again once Redis is back", async () => {
    const redis = await OwnRedis.create();
    const shared = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ database: shared, env });
    const two = await startTestServer({ database: shared, env });
    try {
      await Promise.all([pubsubReaches(one, "connected"), pubsubReaches(two, "connected")]);
      const before = await createUser(one, "outage-before", "developer");
      const during = await createUser(one, "outage-during", "developer");
      for (const user of [before, during]) {
        expect((await two.gql(`{ viewer { username } }`, {}, user.token)).data?.viewer.username).toBe(user.username);
      }

      await redis.stop();
      await Promise.all([pubsubReaches(one, "disconnected"), pubsubReaches(two, "disconnected")]);
      // Instance 2 cannot hear this logout; it asks the database instead of its cache.
      expect((await one.gql(`mutation { logout }`, {}, during.token)).data?.logout).toBe(true);
      expect(errorCodes(await two.gql(`{ viewer { username } }`, {}, during.token))).toEqual(["UNAUTHENTICATED"]);
      expect((await two.gql(`{ viewer { username } }`, {}, before.token)).data?.viewer.username).toBe("outage-before");

      await redis.start();
      await Promise.all([pubsubReaches(one, "connected"), pubsubReaches(two, "connected")]);
      expect((await two.gql(`{ viewer { username } }`, {}, before.token)).data?.viewer.username).toBe("outage-before");
      expect((await one.gql(`mutation { logout }`, {}, before.token)).data?.logout).toBe(true);
      expect(errorCodes(await two.gql(`{ viewer { username } }`, {}, before.token))).toEqual(["UNAUTHENTICATED"]);
    } finally {
      await redis.start().catch(() => {});
      await two.close();
      await one.close();
      await shared.drop();
      await redis.stop();
    }
  });
});
