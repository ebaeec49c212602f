// Redis goes away and comes back: the server keeps serving what needs no Redis, reports the
// outage in /readyz, never lets a failed publish escape, and carries events and invalidations
// between instances again once Redis is back, without a restart. Each test runs a Redis of its
// own on a free port (never the machine's shared one) and kills it.
import { randomBytes } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SESSION_ENDED_CLOSE_CODE } from "../src/http/websocket.js";
import { createTestDatabase, TEST_DATABASE_URL } from "./support/database.js";
import { OwnRedis } from "./support/redis.js";
import { errorCodes, pubsubReaches, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { triggerUntilReceived, wsStream, type ResultStream } from "./support/streams.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE } from "./support/usage.js";
import { createUser } from "./support/users.js";

const CREATED = /* GraphQL */ `subscription ($after: String) { usageLogCreated(after: $after) { endpoint streamCursor } }`;
const LIVE_SUMMARY = /* GraphQL */ `query @live { usageSummary { totalRequests } }`;
const VERIFY = /* GraphQL */ `query ($s: String!) { verifyApiKey(secret: $s) { valid code } }`;
const LOGS = /* GraphQL */ `query ($e: String) { usageLogs(filter: { endpoint: $e }) { edges { node { endpoint } } } }`;

async function readiness(server: TestServer) {
  const response = await fetch(server.url.replace(/\/graphql$/, "/readyz"));
  return { status: response.status, body: (await response.json()) as { status: string; pubsub: string; publishFailures: number } };
}

/** Reads a usageLogCreated stream until the event for this endpoint arrives (earlier ones may still be on their way). */
async function receives(stream: ResultStream, endpoint: string) {
  for (;;) {
    const result = await stream.next();
    if (!result) return false;
    if ((result.data as { usageLogCreated?: { endpoint: string } } | undefined)?.usageLogCreated?.endpoint === endpoint) return true;
  }
}

/**
 * Reads a usageLogCreated stream to its end, which must be EVENTS_DROPPED for the pub/sub's
 * interruption; answers the endpoints it delivered meanwhile and the last cursor.
 */
async function interrupted(stream: ResultStream, cursor: string | null = null) {
  const endpoints: string[] = [];
  for (;;) {
    const result = await stream.next();
    if (!result) throw new Error("the stream ended without EVENTS_DROPPED");
    if (result.errors) {
      // Events read before this call are already in `cursor`.
      expect(result.errors.map((error) => error.extensions)).toEqual([{ code: "EVENTS_DROPPED", reason: "PUBSUB_INTERRUPTED" }]);
      expect(await stream.next()).toBeNull();
      return { endpoints, cursor };
    }
    const log = (result.data as { usageLogCreated: { endpoint: string; streamCursor: string } }).usageLogCreated;
    endpoints.push(log.endpoint);
    cursor = log.streamCursor;
  }
}

/** The cursor of the last event a stream has delivered so far. */
function lastCursor(stream: ResultStream): string | null {
  const events = stream.received.filter((result) => result.data);
  return (events.at(-1)?.data as { usageLogCreated: { streamCursor: string } } | undefined)?.usageLogCreated.streamCursor ?? null;
}

/** A graphql-ws connection that stays open between operations (the close it expects is not an error). */
const keptOpen = (server: TestServer, token: string) =>
  server.ws({ lazy: false, onNonLazyError: () => {}, connectionParams: { authorization: `Bearer ${token}` } });

const closeCode = (client: ReturnType<TestServer["ws"]>) =>
  new Promise<number>((resolve) => client.on("closed", (event) => resolve((event as CloseEvent).code)));

// The server runs in this process: a publish failing unhandled would land here.
const processErrors: unknown[] = [];
const recordError = (error: unknown) => processErrors.push(error);
beforeAll(() => {
  process.on("unhandledRejection", recordError);
  process.on("uncaughtException", recordError);
});
afterAll(() => {
  process.off("unhandledRejection", recordError);
  process.off("uncaughtException", recordError);
});

const prefix = () => `pp-outage-${randomBytes(6).toString("hex")}:`;

describe("one instance while Redis is down", () => {
  it("keeps recording, answering and streaming locally, and reports the outage in /readyz", async () => {
    const redis = await OwnRedis.create();
    const server = await startTestServer({ env: { REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: prefix() } });
    try {
      await pubsubReaches(server, "connected");
      expect(await readiness(server)).toEqual({ status: 200, body: { status: "ready", pubsub: "connected", publishFailures: 0 } });
      const gateway = await createGatewayCredential(server);
      const partner = await createPartner(server, "Outage");
      const key = await createKey(server, partner.id, partner.ownerId);
      const developer = await createUser(server, "outage-dev", "developer", partner.id);
      const leaving = await createUser(server, "outage-leaving", "developer", partner.id);
      const stream = wsStream(server.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } }), CREATED);
      expect(await triggerUntilReceived(stream, () => server.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/up" })] }, gateway))).toBeTruthy();
      const leavingClient = keptOpen(server, leaving.token);
      const leavingClosed = closeCode(leavingClient);
      expect((await wsStream(leavingClient, `{ viewer { id } }`).next())?.data).toEqual({ viewer: { id: leaving.globalId } });

      await redis.stop();
      await pubsubReaches(server, "disconnected");

      // The stream may miss other instances' events now: it says so and ends.
      const { cursor } = await interrupted(stream, lastCursor(stream));
      const client = server.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } });
      const during = wsStream(client, CREATED, { after: cursor });
      const recorded = await server.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/down" })] }, gateway);
      expect(recorded.data).toEqual({ recordUsage: { accepted: 1, rejected: [] } });
      // This instance's own subscribers still get the event; only other instances miss it.
      expect(await receives(during, "/down")).toBe(true);
      const logs = await server.gql(LOGS, { e: "/down" }, developer.token);
      expect(logs.data).toEqual({ usageLogs: { edges: [{ node: { endpoint: "/down" } }] } });
      expect((await server.gql(VERIFY, { s: key.secret }, gateway)).data).toEqual({ verifyApiKey: { valid: true, code: "VALID" } });
      // Logging out still closes this instance's sockets of the session.
      expect((await server.gql(`mutation { logout }`, {}, leaving.token)).data).toEqual({ logout: true });
      expect(await leavingClosed).toBe(SESSION_ENDED_CLOSE_CODE);

      // The messages meant for other instances fail once the client gives up on them: counted, not thrown.
      await vi.waitFor(async () => expect((await readiness(server)).body.publishFailures).toBeGreaterThan(0), { timeout: 15_000, interval: 100 });
      const ready = await readiness(server);
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ status: "ready", pubsub: "disconnected" });

      await redis.start();
      await pubsubReaches(server, "connected");
      expect((await readiness(server)).body.pubsub).toBe("connected");
      // Back: the stream from the outage ends too; resumed, it carries on with nothing repeated.
      const { cursor: resumeFrom } = await interrupted(during, lastCursor(during));
      const after = wsStream(client, CREATED, { after: resumeFrom });
      await server.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/back" })] }, gateway);
      expect(await receives(after, "/back")).toBe(true);
      expect(after.received.map((r) => (r.data as { usageLogCreated: { endpoint: string } }).usageLogCreated.endpoint)).toEqual(["/back"]);
      after.close();
      expect(processErrors).toEqual([]);
    } finally {
      await server.close();
      await redis.stop();
    }
  });
});

describe.skipIf(!TEST_DATABASE_URL)("two instances while Redis is down and after it returns", () => {
  it("serve on their own during the outage, then share events, invalidations and logouts again", async () => {
    const redis = await OwnRedis.create();
    const database = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: prefix() };
    const one = await startTestServer({ database, env });
    const two = await startTestServer({ database, env });
    try {
      await Promise.all([pubsubReaches(one, "connected"), pubsubReaches(two, "connected")]);
      const gateway = await createGatewayCredential(one);
      const admin = await createUser(one, "outage2-admin", "admin");
      const partner = await createPartner(one, "Outage two");
      const key = await createKey(one, partner.id, partner.ownerId);
      const developer = await createUser(one, "outage2-dev", "developer", partner.id);
      const [duringOutage, afterOutage] = await Promise.all([
        createUser(one, "outage2-leaves-during", "developer", partner.id),
        createUser(one, "outage2-leaves-after", "developer", partner.id),
      ]);

      // Instance two: a subscriber and a live query, fed by what instance one records.
      const client = two.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } });
      const before = wsStream(client, CREATED);
      const live = wsStream(client, LIVE_SUMMARY);
      const firstTotal = ((await live.next())?.data as { usageSummary: { totalRequests: number } }).usageSummary.totalRequests;
      expect(await triggerUntilReceived(before, () => one.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/up" })] }, gateway))).toBeTruthy();
      // Sockets on instance two whose sessions end on instance one.
      const socketsOf = [duringOutage, afterOutage].map((user) => {
        const socket = keptOpen(two, user.token);
        return { socket, closed: closeCode(socket) };
      });
      for (const { socket } of socketsOf) expect((await wsStream(socket, `{ viewer { id } }`).next())?.data).toBeTruthy();
      expect((await two.gql(VERIFY, { s: key.secret }, gateway)).data!.verifyApiKey.code).toBe("VALID");

      const subscriber = two.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } });
      await redis.stop();
      await Promise.all([pubsubReaches(one, "disconnected"), pubsubReaches(two, "disconnected")]);
      // A stream that may miss events says so and ends; its client resumes from its last cursor.
      const { cursor: beforeCursor } = await interrupted(before, lastCursor(before));
      expect(beforeCursor).toBeTruthy();

      const recorded = await one.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/down" })] }, gateway);
      expect(recorded.data).toEqual({ recordUsage: { accepted: 1, rejected: [] } });
      expect((await two.gql(LOGS, { e: "/down" }, developer.token)).data!.usageLogs.edges).toHaveLength(1);
      expect((await one.gql(VERIFY, { s: key.secret }, gateway)).data!.verifyApiKey.code).toBe("VALID");
      expect((await one.gql(`mutation { logout }`, {}, duringOutage.token)).data).toEqual({ logout: true });
      // A subscriber on instance one during the outage, resuming from before it: the replay brings
      // what one recorded, and one's own events arrive live.
      const during = wsStream(one.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } }), CREATED, { after: beforeCursor });
      expect(await receives(during, "/down")).toBe(true);
      await one.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/local" })] }, gateway);
      expect(await receives(during, "/local")).toBe(true);
      // What instance two records meanwhile cannot reach it until Redis is back.
      await two.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/down-on-two" })] }, gateway);
      await vi.waitFor(async () => expect((await readiness(one)).body.publishFailures).toBeGreaterThan(0), { timeout: 15_000, interval: 100 });
      for (const server of [one, two]) {
        expect(await readiness(server)).toMatchObject({ status: 200, body: { status: "ready", pubsub: "disconnected" } });
      }

      await redis.start();
      await Promise.all([pubsubReaches(one, "connected"), pubsubReaches(two, "connected")]);

      // The logout instance two missed is caught up on: its socket closes.
      expect(await socketsOf[0]!.closed).toBe(SESSION_ENDED_CLOSE_CODE);
      // The stream from the outage ends too, and resuming from its last cursor brings what
      // instance two recorded meanwhile, once, before live events.
      const seen = await interrupted(during, lastCursor(during));
      expect(seen.endpoints).not.toContain("/down-on-two");
      const resumed = wsStream(one.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } }), CREATED, { after: seen.cursor });
      // Events cross again, to a subscriber resuming on instance two and to the resumed one.
      const again = wsStream(subscriber, CREATED, { after: beforeCursor });
      await one.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/back" })] }, gateway);
      expect(await receives(again, "/back")).toBe(true);
      const againEndpoints = again.received.map((r) => (r.data as { usageLogCreated: { endpoint: string } }).usageLogCreated.endpoint);
      expect(againEndpoints).toEqual(["/down", "/local", "/down-on-two", "/back"]);
      await two.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/back-from-two" })] }, gateway);
      expect(await receives(resumed, "/back-from-two")).toBe(true);
      const resumedEndpoints = resumed.received.map((r) => (r.data as { usageLogCreated: { endpoint: string } }).usageLogCreated.endpoint);
      expect(resumedEndpoints).toEqual(["/down-on-two", "/back", "/back-from-two"]);
      // The live query on instance two re-runs on what instance one recorded.
      await one.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/back-live" })] }, gateway);
      const summary = await two.gql(`{ usageSummary { totalRequests } }`, {}, developer.token);
      const expected: number = summary.data!.usageSummary.totalRequests;
      expect(expected).toBeGreaterThan(firstTotal);
      let total = firstTotal;
      while (total < expected) {
        total = ((await live.next())?.data as { usageSummary: { totalRequests: number } }).usageSummary.totalRequests;
      }
      // A key revoked on instance one is refused by instance two's cache.
      const revoked = await one.gql(`mutation ($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: key.globalId }, admin.token);
      expect(revoked.errors).toBeUndefined();
      // The revocation reaches instance two as a message; its answer changes once it has.
      await vi.waitFor(
        async () => expect((await two.gql(VERIFY, { s: key.secret }, gateway)).data!.verifyApiKey.code).toBe("REVOKED"),
        { timeout: 10_000, interval: 20 },
      );
      // A logout on instance one closes the session's socket on instance two.
      await one.gql(`mutation { logout }`, {}, afterOutage.token);
      expect(await socketsOf[1]!.closed).toBe(SESSION_ENDED_CLOSE_CODE);
      // A revoked credential is refused by instance two, whose cache trusted it.
      const other = await createGatewayCredential(one, "outage2-other");
      expect(errorCodes(await two.gql(VERIFY, { s: key.secret }, other))).toEqual([]);
      const otherSocket = keptOpen(two, other);
      const otherClosed = closeCode(otherSocket);
      expect((await wsStream(otherSocket, VERIFY, { s: key.secret }).next())?.data).toBeTruthy();
      const credential = await one.app.services.prisma.serviceCredential.findFirstOrThrow({ where: { name: "outage2-other" } });
      const credentialId = encodeGlobalID("ServiceCredential", credential.id);
      await one.gql(`mutation ($id: ID!) { revokeServiceCredential(id: $id) { isActive } }`, { id: credentialId }, admin.token);
      expect(await otherClosed).toBe(SESSION_ENDED_CLOSE_CODE);
      expect(errorCodes(await two.gql(VERIFY, { s: key.secret }, other))).toEqual(["UNAUTHENTICATED"]);

      again.close();
      resumed.close();
      live.close();
      expect(processErrors).toEqual([]);
    } finally {
      await two.close();
      await one.close();
      await database.drop();
      await redis.stop();
    }
  });

  it("do not trust caches an invalidation could have missed: a key revoked during the outage is refused elsewhere at once, and live queries catch up when Redis returns", async () => {
    const redis = await OwnRedis.create();
    const database = await createTestDatabase();
    const env = { ...sharedSecrets(), REDIS_URL: redis.url, REDIS_CHANNEL_PREFIX: prefix() };
    const one = await startTestServer({ database, env });
    const two = await startTestServer({ database, env });
    try {
      await Promise.all([pubsubReaches(one, "connected"), pubsubReaches(two, "connected")]);
      const gateway = await createGatewayCredential(one);
      const admin = await createUser(one, "outage3-admin", "admin");
      const partner = await createPartner(one, "Outage three");
      const key = await createKey(one, partner.id, partner.ownerId);
      const developer = await createUser(one, "outage3-dev", "developer", partner.id);
      // Instance two has the key in its verification cache (by secret, and by id from ingest), and
      // a live query open.
      expect((await two.gql(VERIFY, { s: key.secret }, gateway)).data!.verifyApiKey.code).toBe("VALID");
      const warm = await two.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/warm" })] }, gateway);
      expect(warm.data).toEqual({ recordUsage: { accepted: 1, rejected: [] } });
      const live = wsStream(two.ws({ connectionParams: { authorization: `Bearer ${developer.token}` } }), LIVE_SUMMARY);
      const firstTotal = ((await live.next())?.data as { usageSummary: { totalRequests: number } }).usageSummary.totalRequests;

      await redis.stop();
      await Promise.all([pubsubReaches(one, "disconnected"), pubsubReaches(two, "disconnected")]);
      const revoked = await one.gql(`mutation ($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: key.globalId }, admin.token);
      expect(revoked.errors).toBeUndefined();
      expect((await two.gql(VERIFY, { s: key.secret }, gateway)).data!.verifyApiKey.code).toBe("REVOKED");
      const refused = await two.gql(RECORD_USAGE, { events: [event(key, { endpoint: "/revoked" })] }, gateway);
      expect(refused.data!.recordUsage).toMatchObject({ accepted: 0, rejected: [{ index: 0, code: "KEY_REVOKED" }] });
      const other = await createKey(one, partner.id, partner.ownerId);
      const recorded = await one.gql(RECORD_USAGE, { events: [event(other, { endpoint: "/missed", requestCount: 7 })] }, gateway);
      expect(recorded.data).toEqual({ recordUsage: { accepted: 1, rejected: [] } });

      await redis.start();
      await Promise.all([pubsubReaches(one, "connected"), pubsubReaches(two, "connected")]);
      // Instance two never heard of that ingest, yet its live query re-runs and shows it.
      let total = firstTotal;
      while (total < firstTotal + 7) {
        total = ((await live.next())?.data as { usageSummary: { totalRequests: number } }).usageSummary.totalRequests;
      }
      expect(total).toBe(firstTotal + 7);
      expect((await two.gql(VERIFY, { s: key.secret }, gateway)).data!.verifyApiKey.code).toBe("REVOKED");
      live.close();
      expect(processErrors).toEqual([]);
    } finally {
      await two.close();
      await one.close();
      await database.drop();
      await redis.stop();
    }
  });
});
