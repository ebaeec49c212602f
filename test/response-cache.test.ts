// Query answers served from memory: a repeated query of a session costs no database statement,
// and every change made through the server (a mutation on any instance, usage from the gateway, a
// key's lastUsedAt, retention) is seen from the next request on. Watched on the wire between the
// server and PostgreSQL.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createTestDatabase, TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { HAS_REDIS_SERVER, OwnRedis } from "./support/redis.js";
import { errorCodes, pubsubReaches, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

const KEYS = /* GraphQL */ `
  query Keys($first: Int = 20) {
    apiKeys(first: $first) { edges { node { keyName lastUsedAt partner { name } createdBy { username } } } }
  }
`;
const LOGS = /* GraphQL */ `{ usageLogs(first: 5) { edges { node { endpoint } } } }`;
const CREATE_KEY = /* GraphQL */ `
  mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { keyName } } }
`;
const VERIFY = /* GraphQL */ `query ($s: String!) { verifyApiKey(secret: $s) { valid code } }`;

type Keys = { apiKeys: { edges: Array<{ node: { keyName: string; lastUsedAt: string | null } }> } };
const keyNames = (data: unknown) => (data as Keys).apiKeys.edges.map((edge) => edge.node.keyName).sort();

/** The response cache's lookups so far on an instance, by result. */
async function lookups(server: TestServer) {
  const { values } = await server.app.metrics.responseCacheLookups.get();
  const count = (result: string) => values.find((value) => value.labels.result === result)?.value ?? 0;
  return { hit: count("hit"), miss: count("miss") };
}

/** Runs one operation and answers it with the statements it made the server run. */
async function watched(server: TestServer, query: string, variables: Record<string, unknown>, token?: string) {
  const before = server.statements!.statements;
  const response = await server.gql(query, variables, token);
  return { response, statements: server.statements!.statements - before };
}

// Moved forward by tests; it starts at the real time, which session tokens are checked against.
let clock = Date.now();
let server: TestServer;
let staff: SignedInUser;
let adminA: SignedInUser;
let developerB: SignedInUser;
let adminC: SignedInUser;
let gateway: string;
let partnerA: Awaited<ReturnType<typeof createPartner>>;
let partnerC: Awaited<ReturnType<typeof createPartner>>;
let keyA: TestKey;

beforeAll(async () => {
  server = await startTestServer({
    watchStatements: true,
    now: () => new Date(clock),
    env: TEST_DATABASE_URL ? { DATABASE_POOL_SIZE: "10" } : {},
  });
  partnerA = await createPartner(server, "Cache Freight A");
  const partnerB = await createPartner(server, "Cache Freight B");
  partnerC = await createPartner(server, "Cache Freight C");
  staff = await createUser(server, "cache-staff", "admin");
  adminA = await createUser(server, "cache-admin-a", "partnerAdmin", partnerA.id);
  developerB = await createUser(server, "cache-developer-b", "developer", partnerB.id);
  adminC = await createUser(server, "cache-admin-c", "partnerAdmin", partnerC.id);
  gateway = await createGatewayCredential(server);
  keyA = await createKey(server, partnerA.id, adminA.id, { keyName: "a-1" });
  await createKey(server, partnerA.id, adminA.id, { keyName: "a-2" });
  await createKey(server, partnerB.id, developerB.id, { keyName: "b-1" });
});

afterAll(async () => {
  await server?.close();
});

describe("the response cache", () => {
  it("answers a session's repeated query from memory: the same answer, no statement, counted as a hit", async () => {
    const first = await watched(server, KEYS, {}, adminA.token);
    expect(keyNames(first.response.data)).toEqual(["a-1", "a-2"]);
    expect(first.statements).toBeGreaterThan(0);
    const before = await lookups(server);
    const again = await watched(server, KEYS, {}, adminA.token);
    expect(again.response).toEqual(first.response);
    expect(again.statements).toBe(0);
    expect(await lookups(server)).toEqual({ hit: before.hit + 1, miss: before.miss });
  });

  it("keeps an answer to the session it was made for: another viewer's same query runs for them", async () => {
    await server.gql(KEYS, {}, adminA.token);
    const other = await watched(server, KEYS, {}, developerB.token);
    expect(keyNames(other.response.data)).toEqual(["b-1"]);
    expect(other.statements).toBeGreaterThan(0);
    // The public's answers are the public's: no signed-in answer reaches a request without a token.
    const anonymous = await server.gql(KEYS, {});
    expect(anonymous.errors).toBeUndefined();
    expect(keyNames(anonymous.data)).toEqual([]);
  });

  it("shows a change made through the API from the next request on, in a list that was empty when cached", async () => {
    expect(keyNames((await server.gql(KEYS, {}, adminC.token)).data)).toEqual([]);
    expect((await watched(server, KEYS, {}, adminC.token)).statements).toBe(0);
    const created = await server.gql(
      CREATE_KEY,
      { input: { partnerId: partnerC.globalId, keyName: "c-1", scopes: ["USAGE_WRITE"] } },
      staff.token,
    );
    expect(created.errors).toBeUndefined();
    expect(keyNames((await server.gql(KEYS, {}, adminC.token)).data)).toEqual(["c-1"]);
  });

  it("refuses a cached session's token from the request right after logout", async () => {
    const leaving = await createUser(server, "cache-leaving", "developer", partnerA.id);
    await server.gql(KEYS, {}, leaving.token);
    expect((await watched(server, KEYS, {}, leaving.token)).statements).toBe(0);
    expect((await server.gql(`mutation { logout }`, {}, leaving.token)).data).toEqual({ logout: true });
    expect(errorCodes(await server.gql(KEYS, {}, leaving.token))).toEqual(["UNAUTHENTICATED"]);
  });

  it("drops a partner's answers and staff's when usage of that partner arrives, and keeps other partners' answers", async () => {
    for (const viewer of [adminA, developerB, staff]) {
      expect((await server.gql(LOGS, {}, viewer.token)).data).toEqual({ usageLogs: { edges: [] } });
      expect((await watched(server, LOGS, {}, viewer.token)).statements).toBe(0);
    }
    const recorded = await server.gql(RECORD_USAGE, { events: [event(keyA, { endpoint: "/a" })] }, gateway);
    expect(recorded.data).toEqual({ recordUsage: { accepted: 1, rejected: [] } });
    for (const viewer of [adminA, staff]) {
      const after = await watched(server, LOGS, {}, viewer.token);
      expect(after.response.data).toEqual({ usageLogs: { edges: [{ node: { endpoint: "/a" } }] } });
      expect(after.statements).toBeGreaterThan(0);
    }
    // Partner B's usage did not change: its answer is still served from memory.
    const other = await watched(server, LOGS, {}, developerB.token);
    expect(other.response.data).toEqual({ usageLogs: { edges: [] } });
    expect(other.statements).toBe(0);
  });

  it("shows a key's lastUsedAt once the gateway's verification has written it", async () => {
    const fresh = await createKey(server, partnerA.id, adminA.id, { keyName: "a-touched" });
    const lastUsed = async () => {
      const data = (await server.gql(KEYS, {}, adminA.token)).data as Keys;
      return data.apiKeys.edges.find((edge) => edge.node.keyName === "a-touched")?.node.lastUsedAt;
    };
    // A write the server did not make (the key inserted directly) is seen once something changes;
    // a staff mutation is one.
    await server.gql(`mutation { logout }`, {}, (await createUser(server, "cache-bump", "developer")).token);
    expect(await lastUsed()).toBeNull();
    expect(await lastUsed()).toBeNull();
    expect((await server.gql(VERIFY, { s: fresh.secret }, gateway)).data).toEqual({ verifyApiKey: { valid: true, code: "VALID" } });
    // The write follows the answer (it never delays the gateway); the cached list follows the write.
    await vi.waitFor(async () => expect(await lastUsed()).toBe(new Date(clock).toISOString()), { timeout: 10_000, interval: 20 });
  });

  it("never caches what depends on the time: verifyApiKey at a key's expiry, usageSummary's default window", async () => {
    const expiring = await createKey(server, partnerA.id, adminA.id, { keyName: "a-expiring", expiresAt: new Date(clock + 60_000) });
    const verify = async () => (await server.gql(VERIFY, { s: expiring.secret }, gateway)).data;
    expect(await verify()).toEqual({ verifyApiKey: { valid: true, code: "VALID" } });
    // The first use writes the key's lastUsedAt, a change; asked again once it has landed.
    const prisma = server.app.services.prisma;
    await vi.waitFor(async () => expect((await prisma.apiKey.findUniqueOrThrow({ where: { id: expiring.id } })).lastUsedAt).not.toBeNull());
    expect(await verify()).toEqual({ verifyApiKey: { valid: true, code: "VALID" } });
    const window = await server.gql(`{ usageSummary { to } }`, {}, adminA.token);
    expect(window.data).toEqual({ usageSummary: { to: new Date(clock).toISOString() } });
    // Nothing changes but the time.
    clock += 120_000;
    expect(await verify()).toEqual({ verifyApiKey: { valid: false, code: "EXPIRED" } });
    expect((await server.gql(`{ usageSummary { to } }`, {}, adminA.token)).data).toEqual({
      usageSummary: { to: new Date(clock).toISOString() },
    });
  });

  it("does not cache an answer with errors", async () => {
    const failing = `query ($id: ID!) { apiKey(id: $id) { keyName } }`;
    const before = await lookups(server);
    for (let i = 0; i < 2; i++) {
      const answer = await server.gql(failing, { id: "not-a-global-id" }, adminA.token);
      expect(errorCodes(answer)).toEqual(["BAD_USER_INPUT"]);
    }
    expect((await lookups(server)).hit).toBe(before.hit);
  });

  it.skipIf(!TEST_DATABASE_URL)("does not keep an answer read before a change committed", async () => {
    // A query the server has not answered yet, so it reads; PostgreSQL's answer is held on the wire.
    const held = server.statements!.hold(/"ApiKey"/);
    const racing = server.gql(KEYS, { first: 19 }, adminA.token);
    await held.reached;
    const created = await server.gql(
      CREATE_KEY,
      { input: { partnerId: partnerA.globalId, keyName: "a-raced", scopes: ["USAGE_WRITE"] } },
      staff.token,
    );
    expect(created.errors).toBeUndefined();
    held.release();
    // The read saw the keys as they were before the key was created; that answer is not kept.
    expect(keyNames((await racing).data)).not.toContain("a-raced");
    expect(keyNames((await server.gql(KEYS, { first: 19 }, adminA.token)).data)).toContain("a-raced");
  });
});

describe("with RESPONSE_CACHE_TTL_SECONDS=0", () => {
  it("answers every query by running it", async () => {
    const uncached = await startTestServer({ watchStatements: true, env: { RESPONSE_CACHE_TTL_SECONDS: "0" } });
    try {
      const user = await createUser(uncached, "uncached", "admin");
      const query = `{ partners { totalCount } }`;
      await uncached.gql(query, {}, user.token);
      const first = await watched(uncached, query, {}, user.token);
      expect(first.statements).toBeGreaterThan(0);
      expect((await watched(uncached, query, {}, user.token)).statements).toBe(first.statements);
      expect((await lookups(uncached)).hit).toBe(0);
    } finally {
      await uncached.close();
    }
  });
});

describe.skipIf(!HAS_REDIS_SERVER)("while Redis is unreachable", () => {
  it("answers nothing from the cache, and starts empty when Redis returns", async () => {
    const redis = await OwnRedis.create();
    const instance = await startTestServer({
      watchStatements: true,
      env: { REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: `pp-cache-${randomBytes(6).toString("hex")}:` },
    });
    try {
      await pubsubReaches(instance, "connected");
      const user = await createUser(instance, "cache-outage", "admin");
      const query = `{ partners { totalCount } }`;
      const { statements: reading } = await watched(instance, query, {}, user.token);
      expect(reading).toBeGreaterThan(0);
      expect((await watched(instance, query, {}, user.token)).statements).toBe(0);

      await redis.stop();
      await pubsubReaches(instance, "disconnected");
      // A change made elsewhere could not arrive now: every answer is read.
      for (let i = 0; i < 2; i++) {
        const during = await watched(instance, query, {}, user.token);
        expect(during.response.data).toEqual({ partners: { totalCount: 0 } });
        expect(during.statements).toBe(reading);
      }

      await redis.start();
      await pubsubReaches(instance, "connected");
      // What was cached before the outage is gone; the cache fills again.
      expect((await watched(instance, query, {}, user.token)).statements).toBe(reading);
      expect((await watched(instance, query, {}, user.token)).statements).toBe(0);
    } finally {
      await instance.close();
      await redis.stop();
    }
  });
});

describe.skipIf(!TEST_REDIS_URL || !TEST_DATABASE_URL)("two instances over Redis", () => {
  it("a mutation on instance 1 reaches instance 2's cached answers before instance 1 answers it", async () => {
    const shared = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ database: shared, redis: true, env });
    const two = await startTestServer({ database: shared, redis: true, env });
    try {
      const partner = await createPartner(one, "Two Instance Freight");
      const admin = await createUser(one, "two-instance-admin", "admin");
      const member = await createUser(one, "two-instance-member", "developer", partner.id);
      for (let round = 0; round < 10; round++) {
        const cached = keyNames((await two.gql(KEYS, {}, member.token)).data);
        const before = await lookups(two);
        expect(keyNames((await two.gql(KEYS, {}, member.token)).data)).toEqual(cached);
        expect((await lookups(two)).hit).toBe(before.hit + 1);
        const created = await one.gql(
          CREATE_KEY,
          { input: { partnerId: partner.globalId, keyName: `round-${round}`, scopes: ["USAGE_WRITE"] } },
          admin.token,
        );
        expect(created.errors).toBeUndefined();
        expect(keyNames((await two.gql(KEYS, {}, member.token)).data)).toEqual([...cached, `round-${round}`].sort());
      }
    } finally {
      await two.close();
      await one.close();
      await shared.drop();
    }
  });
});
