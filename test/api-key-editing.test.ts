import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { createWorld, type Actor, type World } from "./support/matrix.js";
import { errorCodes, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { createUser } from "./support/users.js";
import { createGatewayCredential, createKey, event, RECORD_USAGE, type TestKey } from "./support/usage.js";

const UPDATE = /* GraphQL */ `
  mutation Update($id: ID!, $input: UpdateApiKeyInput!) {
    updateApiKey(id: $id, input: $input) { id keyName scopes expiresAt isActive }
  }
`;
const DISABLE = /* GraphQL */ `mutation Disable($id: ID!) { disableApiKey(id: $id) { id isActive revokedAt } }`;
const ENABLE = /* GraphQL */ `mutation Enable($id: ID!) { enableApiKey(id: $id) { id isActive revokedAt } }`;
const REVOKE = /* GraphQL */ `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { id isActive } }`;
const VERIFY = /* GraphQL */ `
  query Verify($secret: String!, $required: [ApiKeyScope!]) { verifyApiKey(secret: $secret, requiredScopes: $required) { valid code scopes } }
`;
const EVENTS = /* GraphQL */ `
  query Events($id: ID!) { apiKey(id: $id) { events { edges { node { action detail actor { id } } } } } }
`;

let server: TestServer;
let world: World;
let gateway: string;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
  gateway = await createGatewayCredential(server, "editing-gateway");
});
afterAll(async () => {
  await server?.close();
});

let sequence = 0;
/** A key of partner A (or B) with the given stored scopes. */
async function keyOf(partner: "A" | "B", scopes = ["usage:read", "usage:write"]): Promise<TestKey> {
  const partnerId = partner === "A" ? world.partnerA.id : world.partnerB.id;
  const key = await createKey(server, partnerId, world.users.admin.id, { keyName: `edit-${++sequence}` });
  await server.app.services.prisma.apiKey.update({ where: { id: key.id }, data: { scopes } });
  return key;
}
const ask = (actor: Actor, query: string, variables: Record<string, unknown>) => server.gql(query, variables, world.token(actor));
const verify = async (secret: string, required?: string[]) =>
  (await server.gql(VERIFY, { secret, required }, gateway)).data!.verifyApiKey as { valid: boolean; code: string; scopes: string[] };
const stored = (id: string) => server.app.services.prisma.apiKey.findUniqueOrThrow({ where: { id } });
const eventsOf = async (key: TestKey) =>
  ((await ask("admin", EVENTS, { id: key.globalId })).data!.apiKey.events.edges as Array<{ node: { action: string; detail: unknown } }>).map(
    (edge) => edge.node,
  );

describe("updateApiKey", () => {
  it("lets an admin rename, widen scopes and set expiry; verification follows at once and the event holds the diff", async () => {
    const key = await keyOf("A", ["usage:read"]);
    expect(await verify(key.secret)).toMatchObject({ code: "VALID", scopes: ["USAGE_READ"] });
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const response = await ask("admin", UPDATE, {
      id: key.globalId,
      input: { keyName: "renamed", scopes: ["USAGE_READ", "API_WRITE"], expiresAt },
    });
    expect(response.errors).toBeUndefined();
    expect(response.data!.updateApiKey).toMatchObject({ keyName: "renamed", scopes: ["USAGE_READ", "API_WRITE"], expiresAt });
    // The cached verification was dropped: the new scope is there on the next call.
    expect(await verify(key.secret, ["API_WRITE"])).toMatchObject({ valid: true, code: "VALID" });
    const [updated] = await eventsOf(key);
    expect(updated).toMatchObject({
      action: "apiKeyUpdated",
      detail: {
        keyName: { from: `edit-${sequence}`, to: "renamed" },
        scopes: { from: ["usage:read"], to: ["usage:read", "api:write"] },
        expiresAt: { from: null, to: expiresAt },
      },
    });
    const row = await stored(key.id);
    expect(JSON.stringify(updated)).not.toContain(row.secretHash);
    expect(JSON.stringify(updated)).not.toContain(key.secret);
  });

  it("lets a partnerAdmin narrow its own key's scopes but not widen them (FORBIDDEN, nothing changes)", async () => {
    const key = await keyOf("A", ["usage:read", "usage:write"]);
    const narrowed = await ask("partnerAdminA", UPDATE, { id: key.globalId, input: { scopes: ["USAGE_READ"] } });
    expect(narrowed.errors).toBeUndefined();
    expect(narrowed.data!.updateApiKey.scopes).toEqual(["USAGE_READ"]);
    expect(await verify(key.secret, ["USAGE_WRITE"])).toMatchObject({ valid: false, code: "INSUFFICIENT_SCOPE" });

    const widened = await ask("partnerAdminA", UPDATE, { id: key.globalId, input: { scopes: ["USAGE_READ", "API_WRITE"], keyName: "sneaky" } });
    expect(errorCodes(widened)).toEqual(["FORBIDDEN"]);
    expect(await stored(key.id)).toMatchObject({ scopes: ["usage:read"], keyName: `edit-${sequence}` });

    const widenedByAdmin = await ask("admin", UPDATE, { id: key.globalId, input: { scopes: ["USAGE_READ", "API_WRITE"] } });
    expect(widenedByAdmin.data!.updateApiKey.scopes).toEqual(["USAGE_READ", "API_WRITE"]);
  });

  it("refuses other partners' keys, developers and support (FORBIDDEN), and signed-out callers (UNAUTHENTICATED)", async () => {
    const key = await keyOf("B", ["usage:read", "usage:write"]);
    for (const actor of ["partnerAdminA", "developerA", "developerB", "support", "noPartner"] as const) {
      for (const query of [UPDATE, DISABLE, ENABLE]) {
        const response = await ask(actor, query, { id: key.globalId, input: { keyName: `taken-by-${actor}`, scopes: ["USAGE_READ"] } });
        expect(errorCodes(response), `${actor}`).toEqual(["FORBIDDEN"]);
        expect(JSON.stringify(response)).not.toContain(key.id);
      }
    }
    const signedOut = await server.gql(UPDATE, { id: key.globalId, input: { keyName: "anon" } });
    expect(errorCodes(signedOut)).toEqual(["UNAUTHENTICATED"]);
    expect(await stored(key.id)).toMatchObject({ keyName: `edit-${sequence}`, scopes: ["usage:read", "usage:write"], isActive: true });
    expect(await eventsOf(key)).toEqual([]);
  });

  it("answers BAD_USER_INPUT for no scopes or a past expiry, CONFLICT for a taken name or a revoked key", async () => {
    const key = await keyOf("A");
    const other = await keyOf("A");
    expect(errorCodes(await ask("admin", UPDATE, { id: key.globalId, input: { scopes: [] } }))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await ask("admin", UPDATE, { id: key.globalId, input: { expiresAt: "2000-01-01T00:00:00Z" } }))).toEqual([
      "BAD_USER_INPUT",
    ]);
    const clash = await ask("partnerAdminA", UPDATE, { id: key.globalId, input: { keyName: (await stored(other.id)).keyName } });
    expect(errorCodes(clash)).toEqual(["CONFLICT"]);
    expect(clash.errors![0]!.extensions!.field).toBe("keyName");
    await ask("admin", REVOKE, { id: key.globalId });
    expect(errorCodes(await ask("admin", UPDATE, { id: key.globalId, input: { keyName: "after-revoke" } }))).toEqual(["CONFLICT"]);
    expect(await eventsOf(key)).toHaveLength(1);
  });

  it("clears an expiry with null and writes no event when nothing changes", async () => {
    const key = await keyOf("A", ["usage:read"]);
    await server.app.services.prisma.apiKey.update({ where: { id: key.id }, data: { expiresAt: new Date(Date.now() + 3_600_000) } });
    const cleared = await ask("partnerAdminA", UPDATE, { id: key.globalId, input: { expiresAt: null } });
    expect(cleared.data!.updateApiKey.expiresAt).toBeNull();
    const same = await ask("partnerAdminA", UPDATE, { id: key.globalId, input: { scopes: ["USAGE_READ"] } });
    expect(same.errors).toBeUndefined();
    expect((await eventsOf(key)).map((e) => e.action)).toEqual(["apiKeyUpdated"]);
  });
});

describe("disableApiKey / enableApiKey", () => {
  it("disables a key until enabled: DISABLED on verification, KEY_DISABLED on ingest, one event each way", async () => {
    const key = await keyOf("A");
    expect((await verify(key.secret)).code).toBe("VALID");
    // Ingest by id and by secret before: the server now holds the key in its caches.
    const before = await server.gql(RECORD_USAGE, { events: [event(key), event(key, { apiKeyId: undefined, apiKeySecret: key.secret })] }, gateway);
    expect(before.data!.recordUsage).toMatchObject({ accepted: 2, rejected: [] });
    const disabled = await ask("partnerAdminA", DISABLE, { id: key.globalId });
    expect(disabled.data!.disableApiKey).toMatchObject({ isActive: false, revokedAt: null });
    expect(await verify(key.secret)).toMatchObject({ valid: false, code: "DISABLED" });
    const usage = await server.gql(RECORD_USAGE, { events: [event(key), event(key, { apiKeyId: undefined, apiKeySecret: key.secret })] }, gateway);
    expect(usage.data!.recordUsage).toMatchObject({
      accepted: 0,
      rejected: [
        { index: 0, code: "KEY_DISABLED" },
        { index: 1, code: "KEY_DISABLED" },
      ],
    });
    // Twice is harmless and writes no second event.
    expect((await ask("admin", DISABLE, { id: key.globalId })).errors).toBeUndefined();

    const enabled = await ask("partnerAdminA", ENABLE, { id: key.globalId });
    expect(enabled.data!.enableApiKey).toMatchObject({ isActive: true, revokedAt: null });
    expect((await verify(key.secret)).code).toBe("VALID");
    const accepted = await server.gql(RECORD_USAGE, { events: [event(key)] }, gateway);
    expect(accepted.data!.recordUsage).toMatchObject({ accepted: 1, rejected: [] });
    expect((await eventsOf(key)).map((e) => e.action)).toEqual(["apiKeyEnabled", "apiKeyDisabled"]);
  });

  it("keeps revocation final: a revoked key verifies REVOKED and cannot be enabled or disabled (CONFLICT)", async () => {
    const key = await keyOf("A");
    await ask("admin", DISABLE, { id: key.globalId });
    await ask("admin", REVOKE, { id: key.globalId });
    expect((await verify(key.secret)).code).toBe("REVOKED");
    for (const query of [ENABLE, DISABLE]) {
      const response = await ask("admin", query, { id: key.globalId });
      expect(errorCodes(response)).toEqual(["CONFLICT"]);
    }
    expect(await stored(key.id)).toMatchObject({ isActive: false });
    expect((await verify(key.secret)).code).toBe("REVOKED");
  });

  it("refuses a suspended partner's partnerAdmin", async () => {
    const partner = await server.app.services.prisma.partnerOrganization.create({ data: { name: "Paused", status: "suspended" } });
    const owner = await createUser(server, "paused-admin", "partnerAdmin", partner.id);
    const key = await createKey(server, partner.id, owner.id);
    expect(errorCodes(await server.gql(DISABLE, { id: key.globalId }, owner.token))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(UPDATE, { id: key.globalId, input: { keyName: "x-renamed" } }, owner.token))).toEqual(["FORBIDDEN"]);
  });
});

describe.skipIf(!TEST_DATABASE_URL || !TEST_REDIS_URL)("two instances sharing PostgreSQL and Redis", () => {
  it("refuses a key disabled on instance 1 on instance 2, whose cache held it, and accepts it again once enabled", async () => {
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ env, redis: true });
    const two = await startTestServer({ env, redis: true, database: { url: one.config.databaseUrl, drop: async () => {} } });
    try {
      const partner = await one.app.services.prisma.partnerOrganization.create({ data: { name: "Shared" } });
      const admin = await createUser(one, "disable-two-admin", "admin");
      const key = await createKey(one, partner.id, admin.id);
      const verifyOn = async (on: TestServer) => (await on.gql(VERIFY, { secret: key.secret }, admin.token)).data!.verifyApiKey.code;
      expect(await verifyOn(two)).toBe("VALID");
      expect((await one.gql(DISABLE, { id: key.globalId }, admin.token)).errors).toBeUndefined();
      await vi.waitFor(async () => expect(await verifyOn(two)).toBe("DISABLED"), { timeout: 10_000, interval: 20 });
      expect((await one.gql(ENABLE, { id: key.globalId }, admin.token)).errors).toBeUndefined();
      await vi.waitFor(async () => expect(await verifyOn(two)).toBe("VALID"), { timeout: 10_000, interval: 20 });
      // A narrowed scope reaches instance 2 the same way.
      expect((await one.gql(UPDATE, { id: key.globalId, input: { scopes: ["USAGE_READ"] } }, admin.token)).errors).toBeUndefined();
      await vi.waitFor(
        async () => expect((await two.gql(VERIFY, { secret: key.secret, required: ["USAGE_WRITE"] }, admin.token)).data!.verifyApiKey.code).toBe("INSUFFICIENT_SCOPE"),
        { timeout: 10_000, interval: 20 },
      );
    } finally {
      await two.close();
      await one.close();
    }
  });
});
