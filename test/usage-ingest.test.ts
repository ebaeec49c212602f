import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser } from "./support/users.js";

let server: TestServer;
let gateway: string;
let adminToken: string;
let partnerA: Awaited<ReturnType<typeof createPartner>>;
let partnerB: Awaited<ReturnType<typeof createPartner>>;
let keyA: TestKey;
let keyB: TestKey;
const NOW = new Date("2026-11-28T12:00:00.000Z");

beforeAll(async () => {
  server = await startTestServer({ now: () => NOW });
  gateway = await createGatewayCredential(server);
  adminToken = (await createUser(server, "ingest-admin", "admin")).token;
  partnerA = await createPartner(server, "Ingest A");
  partnerB = await createPartner(server, "Ingest B");
  keyA = await createKey(server, partnerA.id, partnerA.ownerId);
  keyB = await createKey(server, partnerB.id, partnerB.ownerId);
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.app.services.prisma;

describe("recordUsage", () => {
  it("keeps the valid events of a mixed batch and rejects the others one by one", async () => {
    const revoked = await createKey(server, partnerA.id, partnerA.ownerId, { revokedAt: new Date("2026-11-01T00:00:00Z") });
    const expired = await createKey(server, partnerA.id, partnerA.ownerId, { expiresAt: new Date("2026-11-27T00:00:00Z") });
    const suspended = await createPartner(server, "Suspended");
    await prisma().partnerOrganization.update({ where: { id: suspended.id }, data: { status: "suspended" } });
    const suspendedKey = await createKey(server, suspended.id, suspended.ownerId);
    const events = [
      event(keyA, { endpoint: "/v1/a", occurredAt: "2026-11-28T11:00:00.000Z" }),
      event(keyA, { statusCode: 99 }),
      { apiKeySecret: keyB.secret, endpoint: "/v1/b", method: "post", statusCode: 503, requestCount: 7 },
      event(revoked),
      event(expired),
      event(suspendedKey),
      event(encodeGlobalID("APIKey", "01900000-0000-7000-8000-000000000000")),
      { apiKeySecret: "ppk_live_notarealsecret", endpoint: "/v1/a", method: "GET", statusCode: 200 },
      event(keyA, { method: "TRACE" }),
      event(keyA, { requestCount: 0 }),
      event(keyA, { occurredAt: "2026-11-28T12:30:00.000Z" }),
      { ...event(keyA), apiKeySecret: keyA.secret },
      event(keyA, { endpoint: "no-slash" }),
    ];
    const response = await server.gql(RECORD_USAGE, { events }, gateway);
    expect(response.errors).toBeUndefined();
    const { accepted, rejected } = response.data!.recordUsage;
    expect(accepted).toBe(2);
    expect(rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [1, "INVALID_EVENT"],
      [3, "KEY_REVOKED"],
      [4, "KEY_EXPIRED"],
      [5, "PARTNER_SUSPENDED"],
      [6, "UNKNOWN_KEY"],
      [7, "UNKNOWN_KEY"],
      [8, "INVALID_EVENT"],
      [9, "INVALID_EVENT"],
      [10, "INVALID_EVENT"],
      [11, "INVALID_EVENT"],
      [12, "INVALID_EVENT"],
    ]);
    const stored = await prisma().usageLog.findMany({ orderBy: { endpoint: "asc" } });
    expect(stored).toMatchObject([
      { partnerId: partnerA.id, apiKeyId: keyA.id, endpoint: "/v1/a", method: "GET", statusCode: 200, requestCount: 1, occurredAt: new Date("2026-11-28T11:00:00.000Z") },
      { partnerId: partnerB.id, apiKeyId: keyB.id, endpoint: "/v1/b", method: "POST", statusCode: 503, requestCount: 7, occurredAt: NOW },
    ]);
    const keys = await prisma().apiKey.findMany({ where: { id: { in: [keyA.id, keyB.id] } }, orderBy: { id: "asc" } });
    expect(Object.fromEntries(keys.map((k) => [k.id, k.lastUsedAt?.toISOString()]))).toEqual({
      [keyA.id]: "2026-11-28T11:00:00.000Z",
      [keyB.id]: NOW.toISOString(),
    });
  });

  it("counts a retried batch once and answers it as the first time", async () => {
    const before = await prisma().usageLog.count();
    const events = [event(keyA, { endpoint: "/v1/retry" }), event(keyA, { statusCode: 42 })];
    const first = await server.gql(RECORD_USAGE, { events, idempotencyKey: "batch-1" }, gateway);
    const retries = await Promise.all([1, 2, 3].map(() => server.gql(RECORD_USAGE, { events, idempotencyKey: "batch-1" }, gateway)));
    for (const retry of retries) expect(retry.data).toEqual(first.data);
    expect(first.data!.recordUsage).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: "INVALID_EVENT" }] });
    expect(await prisma().usageLog.count()).toBe(before + 1);
    // The key belongs to the caller: an admin's batch of the same name is a different batch.
    const asAdmin = await server.gql(RECORD_USAGE, { events, idempotencyKey: "batch-1" }, adminToken);
    expect(asAdmin.data!.recordUsage.accepted).toBe(1);
    expect(await prisma().usageLog.count()).toBe(before + 2);
  });

  it("takes the partner from the key, whatever the input says", async () => {
    const response = await server.gql(
      RECORD_USAGE,
      { events: [{ ...event(keyB, { endpoint: "/v1/spoof" }), partnerId: partnerA.globalId }] },
      gateway,
    );
    // The input type has no partner field at all: such a batch is refused whole.
    expect(response.data ?? null).toBeNull();
    expect(response.errors?.[0]?.message).toMatch(/partnerId/);
    const ok = await server.gql(RECORD_USAGE, { events: [event(keyB, { endpoint: "/v1/spoof" })] }, gateway);
    expect(ok.data!.recordUsage.accepted).toBe(1);
    const stored = await prisma().usageLog.findFirstOrThrow({ where: { endpoint: "/v1/spoof" } });
    expect(stored.partnerId).toBe(partnerB.id);
  });

  it("stores a batch of 1,000 events in one call", async () => {
    const before = await prisma().usageLog.count();
    const events = Array.from({ length: 1000 }, (_, i) => event(i % 2 ? keyA : keyB, { endpoint: `/v1/bulk/${i % 10}` }));
    const response = await server.gql(RECORD_USAGE, { events }, gateway);
    expect(response.data!.recordUsage).toEqual({ accepted: 1000, rejected: [] });
    expect(await prisma().usageLog.count()).toBe(before + 1000);
  });

  it("refuses an oversized batch whole, and callers other than the gateway", async () => {
    const events = Array.from({ length: 5001 }, () => event(keyA));
    expect(errorCodes(await server.gql(RECORD_USAGE, { events }, gateway))).toEqual(["BAD_USER_INPUT"]);
    const developer = await createUser(server, "ingest-dev", "developer", partnerA.id);
    expect(errorCodes(await server.gql(RECORD_USAGE, { events: [event(keyA)] }, developer.token))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(RECORD_USAGE, { events: [event(keyA)] }))).toEqual(["UNAUTHENTICATED"]);
  });
});

describe("recordUsage with an idempotencyKey and no event accepted", () => {
  it("remembers the batch: a retry answers the same rejections, other events under the key a CONFLICT", async () => {
    const events = [event(keyA, { statusCode: 42 }), event(keyA, { endpoint: "no-slash" })];
    const first = await server.gql(RECORD_USAGE, { events, idempotencyKey: "all-rejected" }, gateway);
    expect(first.data?.recordUsage.accepted).toBe(0);
    expect(first.data?.recordUsage.rejected.map((r: { code: string }) => r.code)).toEqual(["INVALID_EVENT", "INVALID_EVENT"]);
    const retry = await server.gql(RECORD_USAGE, { events, idempotencyKey: "all-rejected" }, gateway);
    expect(retry.data).toEqual(first.data);
    const other = await server.gql(RECORD_USAGE, { events: [event(keyA)], idempotencyKey: "all-rejected" }, gateway);
    expect(errorCodes(other)).toEqual(["CONFLICT"]);
    expect(await prisma().usageLog.count({ where: { apiKeyId: keyA.id, endpoint: "/v1/orders", occurredAt: NOW } })).toBe(0);
  });
});
