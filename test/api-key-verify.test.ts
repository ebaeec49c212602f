import { randomBytes } from "node:crypto";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generateSecret } from "../src/auth/api-key-secret.js";
import { LAST_USED_THROTTLE_MS } from "../src/auth/api-key-verifier.js";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./support/database.js";
import { errorCodes, sharedSecrets, startTestServer, type TestServer } from "./support/server.js";
import { createUser, type SignedInUser } from "./support/users.js";
import { createGatewayCredential, createKey as createUsageKey, createPartner, event, RECORD_USAGE } from "./support/usage.js";
import { watchedVerifier, type WatchedVerifier } from "./support/verifier.js";

const CREATE = /* GraphQL */ `
  mutation Create($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }
`;
const REVOKE = /* GraphQL */ `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { isActive } }`;
const VERIFY = /* GraphQL */ `
  query Verify($secret: String!, $required: [ApiKeyScope!]) {
    verifyApiKey(secret: $secret, requiredScopes: $required) { valid code scopes expiresAt apiKeyId partnerId }
  }
`;

let clock = new Date("2027-05-10T12:00:00Z");
let server: TestServer;
let admin: SignedInUser;
let partnerId: string;
let partnerGid: string;

beforeAll(async () => {
  server = await startTestServer({ now: () => clock });
  const partner = await server.app.services.prisma.partnerOrganization.create({ data: { name: "Verify Co" } });
  partnerId = partner.id;
  partnerGid = encodeGlobalID("PartnerOrganization", partner.id);
  admin = await createUser(server, "verify-admin", "admin");
  watched = watchedVerifier(server, () => clock);
});
afterAll(async () => {
  await watched?.close();
  await server?.close();
});

async function createKey(on: TestServer, token: string, keyName: string, scopes = ["USAGE_READ", "USAGE_WRITE"]) {
  const response = await on.gql<{ createApiKey: { secret: string; apiKey: { id: string } } }>(
    CREATE,
    { input: { partnerId: partnerGid, keyName, scopes } },
    token,
  );
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return response.data!.createApiKey;
}

// A verifier over the same database, pub/sub and clock, whose database calls the test can see.
let watched: WatchedVerifier;
const verifier = () => watched.verifier;
const databaseReads = () => watched.databaseReads;

describe("malformed and unknown secrets", () => {
  it("answers MALFORMED for tampered, truncated and random strings without reading the database", async () => {
    const { secret } = await createKey(server, admin.token, "original");
    const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === "A" ? "B" : "A") + s.slice(at + 1);
    const before = databaseReads();
    for (const bad of [
      flip(secret, 20),
      flip(secret, secret.length - 1),
      secret.slice(0, -1),
      secret.slice(0, 20),
      `${secret}x`,
      secret.replace("ppk_live_", "ppk_prod_"),
      "",
      "hello",
      randomBytes(32).toString("base64url"),
      `ppk_live_${"a".repeat(38)}`,
      generateSecret("pps", "live").secret,
      "x".repeat(5000),
    ]) {
      expect(await verifier().verify(bad), bad).toMatchObject({ valid: false, code: "MALFORMED", apiKeyId: null });
    }
    expect(databaseReads()).toBe(before);

    const overHttp = await server.gql(VERIFY, { secret: flip(secret, 12) }, admin.token);
    expect(overHttp.data!.verifyApiKey).toEqual({
      valid: false,
      code: "MALFORMED",
      scopes: [],
      expiresAt: null,
      apiKeyId: null,
      partnerId: null,
    });
    expect(databaseReads()).toBe(before);
  });

  it("answers NOT_FOUND for a well-formed secret no key has, and for the other environment's keys", async () => {
    const unknown = generateSecret("ppk", "live").secret;
    expect(await verifier().verify(unknown)).toMatchObject({ valid: false, code: "NOT_FOUND" });
    const reads = databaseReads();
    expect(await verifier().verify(generateSecret("ppk", "test").secret)).toMatchObject({ code: "NOT_FOUND" });
    expect(databaseReads()).toBe(reads);
  });
});

describe("a known key", () => {
  it("verifies from the cache after the first read, with its scopes and ids", async () => {
    const { secret, apiKey } = await createKey(server, admin.token, "cached");
    const first = await server.gql(VERIFY, { secret }, admin.token);
    expect(first.data!.verifyApiKey).toEqual({
      valid: true,
      code: "VALID",
      scopes: ["USAGE_READ", "USAGE_WRITE"],
      expiresAt: null,
      apiKeyId: apiKey.id,
      partnerId: partnerGid,
    });
    // The watched verifier (the server's twin) reads it once, then answers from its cache.
    expect((await verifier().verify(secret)).code).toBe("VALID");
    const reads = databaseReads();
    for (let i = 0; i < 20; i++) expect((await verifier().verify(secret)).code).toBe("VALID");
    expect(databaseReads()).toBe(reads);
  });

  it("answers INSUFFICIENT_SCOPE when a required scope is missing", async () => {
    const { secret } = await createKey(server, admin.token, "scoped", ["USAGE_READ"]);
    expect((await server.gql(VERIFY, { secret, required: ["USAGE_READ"] }, admin.token)).data!.verifyApiKey).toMatchObject({
      valid: true,
      code: "VALID",
    });
    expect(
      (await server.gql(VERIFY, { secret, required: ["USAGE_READ", "DOCS_READ"] }, admin.token)).data!.verifyApiKey,
    ).toMatchObject({ valid: false, code: "INSUFFICIENT_SCOPE", scopes: ["USAGE_READ"] });
    expect(errorCodes(await server.gql(VERIFY, { secret, required: ["usage:read"] }, admin.token))).toEqual([
      "BAD_USER_INPUT",
    ]);
  });

  it("updates lastUsedAt on success at most once a minute per key, without blocking the answer", async () => {
    const { secret, apiKey } = await createKey(server, admin.token, "busy");
    const prisma = server.app.services.prisma;
    const id = Buffer.from(apiKey.id, "base64").toString().split(":")[1]!;
    const lastUsedAt = async () => (await prisma.apiKey.findUniqueOrThrow({ where: { id } })).lastUsedAt?.toISOString();
    const start = clock;
    try {
      expect((await verifier().verify(secret)).code).toBe("VALID");
      await watched.writesSettled();
      expect(await lastUsedAt()).toBe(start.toISOString());

      clock = new Date(start.getTime() + LAST_USED_THROTTLE_MS / 2);
      expect((await verifier().verify(secret)).code).toBe("VALID");
      await watched.writesSettled();
      expect(await lastUsedAt()).toBe(start.toISOString());

      clock = new Date(start.getTime() + LAST_USED_THROTTLE_MS + 1000);
      expect((await verifier().verify(secret)).code).toBe("VALID");
      await watched.writesSettled();
      expect(await lastUsedAt()).toBe(clock.toISOString());

      // A refusal is not a use.
      clock = new Date(start.getTime() + 3 * LAST_USED_THROTTLE_MS);
      expect((await verifier().verify(secret, { requiredScopes: ["docs:read"] })).code).toBe("INSUFFICIENT_SCOPE");
      await watched.writesSettled();
      expect(await lastUsedAt()).toBe(new Date(start.getTime() + LAST_USED_THROTTLE_MS + 1000).toISOString());
    } finally {
      clock = start;
    }
  });

  it("is REVOKED from the next verification after a revoke, although it was cached", async () => {
    const { secret, apiKey } = await createKey(server, admin.token, "cached-then-revoked");
    expect((await verifier().verify(secret)).code).toBe("VALID");
    expect((await verifier().verify(secret)).code).toBe("VALID");
    await server.gql(REVOKE, { id: apiKey.id }, admin.token);
    expect(await verifier().verify(secret)).toMatchObject({ valid: false, code: "REVOKED", apiKeyId: expect.any(String) });
  });

  it("answers PARTNER_SUSPENDED once its partner is suspended, although it was cached", async () => {
    const prisma = server.app.services.prisma;
    const partner = await prisma.partnerOrganization.create({ data: { name: "Soon suspended" } });
    const key = await server.gql(
      CREATE,
      { input: { partnerId: encodeGlobalID("PartnerOrganization", partner.id), keyName: "k", scopes: ["API_READ"] } },
      admin.token,
    );
    const secret: string = key.data!.createApiKey.secret;
    expect((await verifier().verify(secret)).code).toBe("VALID");
    const suspend = await server.gql(
      `mutation ($id: ID!) { updatePartner(id: $id, input: { status: suspended }) { status } }`,
      { id: encodeGlobalID("PartnerOrganization", partner.id) },
      admin.token,
    );
    expect(suspend.errors).toBeUndefined();
    expect((await verifier().verify(secret)).code).toBe("PARTNER_SUSPENDED");
    expect(partnerId).not.toBe(partner.id);
  });
});

describe("keys named by id (ingest)", () => {
  it("reads a batch's keys once for all of them, then answers from the cache until a change drops them", async () => {
    const prisma = server.app.services.prisma;
    const partner = await prisma.partnerOrganization.create({ data: { name: "Ingest by id" } });
    const partnerGlobalId = encodeGlobalID("PartnerOrganization", partner.id);
    const created = [];
    for (const name of ["one", "two", "three"]) {
      const response = await server.gql<{ createApiKey: { apiKey: { id: string } } }>(
        CREATE,
        { input: { partnerId: partnerGlobalId, keyName: name, scopes: ["USAGE_WRITE"] } },
        admin.token,
      );
      created.push(Buffer.from(response.data!.createApiKey.apiKey.id, "base64").toString().split(":")[1]!);
    }
    const [one, two, three] = created as [string, string, string];
    const unknown = "0190aaaa-0000-7000-8000-000000000000";
    const states = async (ids: string[]) => {
      const found = await verifier().keyStates(ids);
      return Object.fromEntries(ids.map((id) => [id, found.get(id) ? { active: found.get(id)!.isActive, revoked: !!found.get(id)!.revokedAt, partner: found.get(id)!.partnerStatus } : null]));
    };

    const reads = watched.idReads;
    expect(await states([one, two, unknown])).toEqual({
      [one]: { active: true, revoked: false, partner: "active" },
      [two]: { active: true, revoked: false, partner: "active" },
      [unknown]: null,
    });
    expect(watched.idReads).toBe(reads + 1);
    // Cached: no read for known keys; one read for the ids it does not hold (an unknown one is not kept).
    await states([one, two]);
    expect(watched.idReads).toBe(reads + 1);
    await states([one, three]);
    expect(watched.idReads).toBe(reads + 2);
    await states([one, two, three]);
    expect(watched.idReads).toBe(reads + 2);

    // A disable (and a revoke) drops the key; the next batch reads it again and sees the change.
    const disable = await server.gql(`mutation ($id: ID!) { disableApiKey(id: $id) { isActive } }`, { id: encodeGlobalID("APIKey", one) }, admin.token);
    expect(disable.errors).toBeUndefined();
    expect((await states([one]))[one]).toEqual({ active: false, revoked: false, partner: "active" });
    await server.gql(REVOKE, { id: encodeGlobalID("APIKey", two) }, admin.token);
    expect((await states([two]))[two]).toMatchObject({ revoked: true });
    // A suspension drops every key of the partner.
    const suspend = await server.gql(
      `mutation ($id: ID!) { updatePartner(id: $id, input: { status: suspended }) { status } }`,
      { id: partnerGlobalId },
      admin.token,
    );
    expect(suspend.errors).toBeUndefined();
    const readsBefore = watched.idReads;
    expect(await states([one, two, three])).toEqual({
      [one]: { active: false, revoked: false, partner: "suspended" },
      [two]: { active: false, revoked: true, partner: "suspended" },
      [three]: { active: true, revoked: false, partner: "suspended" },
    });
    expect(watched.idReads).toBe(readsBefore + 1);
  });
});

describe.skipIf(!TEST_DATABASE_URL || !TEST_REDIS_URL)("two instances sharing PostgreSQL and Redis", () => {
  it("refuses a key revoked on instance 1 on instance 2, whose cache held it", async () => {
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ env, redis: true });
    const two = await startTestServer({
      env,
      redis: true,
      database: { url: one.config.databaseUrl, drop: async () => {} },
      watchStatements: true,
    });
    try {
      expect(two.config.redisUrl).toBe(TEST_REDIS_URL);
      const partner = await one.app.services.prisma.partnerOrganization.create({ data: { name: "Shared" } });
      const gid = encodeGlobalID("PartnerOrganization", partner.id);
      const oneAdmin = await createUser(one, "two-instances-admin", "admin");
      const created = await one.gql<{ createApiKey: { secret: string; apiKey: { id: string } } }>(
        CREATE,
        { input: { partnerId: gid, keyName: "shared", scopes: ["API_READ"] } },
        oneAdmin.token,
      );
      const { secret, apiKey } = created.data!.createApiKey;

      // Instance 2 warms its cache, then serves the key without reading the database.
      const keyLookups = () => two.statements!.texts.filter((text) => text.includes('"secretHash" = ')).length;
      expect((await two.gql(VERIFY, { secret }, oneAdmin.token)).data!.verifyApiKey.code).toBe("VALID");
      const lookups = keyLookups();
      expect(lookups).toBeGreaterThan(0);
      expect((await two.gql(VERIFY, { secret }, oneAdmin.token)).data!.verifyApiKey.code).toBe("VALID");
      expect(keyLookups()).toBe(lookups);

      expect((await one.gql(REVOKE, { id: apiKey.id }, oneAdmin.token)).errors).toBeUndefined();
      // The revocation reaches instance 2 as a message; its answer changes once it has.
      await vi.waitFor(
        async () => expect((await two.gql(VERIFY, { secret }, oneAdmin.token)).data!.verifyApiKey).toMatchObject({ valid: false, code: "REVOKED" }),
        { timeout: 10_000, interval: 20 },
      );
    } finally {
      await two.close();
      await one.close();
    }
  });

  it("refuses usage naming a key by id on instance 2 once instance 1 disabled it, although ingest had cached it", async () => {
    const env = { ...sharedSecrets(), REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` };
    const one = await startTestServer({ env, redis: true });
    const two = await startTestServer({ env, redis: true, database: { url: one.config.databaseUrl, drop: async () => {} } });
    try {
      const partner = await createPartner(one, "Shared ingest");
      const key = await createUsageKey(one, partner.id, partner.ownerId);
      const gateway = await createGatewayCredential(one);
      const oneAdmin = await createUser(one, "two-instances-ingest-admin", "admin");
      const accepted = await two.gql(RECORD_USAGE, { events: [event(key)] }, gateway);
      expect(accepted.data).toEqual({ recordUsage: { accepted: 1, rejected: [] } });

      const disabled = await one.gql(`mutation ($id: ID!) { disableApiKey(id: $id) { isActive } }`, { id: key.globalId }, oneAdmin.token);
      expect(disabled.data).toEqual({ disableApiKey: { isActive: false } });
      await vi.waitFor(
        async () =>
          expect((await two.gql(RECORD_USAGE, { events: [event(key)] }, gateway)).data!.recordUsage).toMatchObject({
            accepted: 0,
            rejected: [{ index: 0, code: "KEY_DISABLED" }],
          }),
        { timeout: 10_000, interval: 20 },
      );
    } finally {
      await two.close();
      await one.close();
    }
  });
});
