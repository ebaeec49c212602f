import { encodeGlobalID } from "@pothos/plugin-relay";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSecret } from "../src/auth/api-key-secret.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { createUser, type SignedInUser } from "./support/users.js";

const KEY_FIELDS = /* GraphQL */ `
  id keyName tokenPrefix scopes isActive lastUsedAt expiresAt revokedAt rotatedAt previousSecretExpiresAt
  partner { id name } createdBy { id username }
`;
const CREATE = /* GraphQL */ `
  mutation Create($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } } }
`;
const ROTATE = /* GraphQL */ `
  mutation Rotate($id: ID!, $grace: Int!) {
    rotateApiKey(id: $id, gracePeriodSeconds: $grace) { secret apiKey { ${KEY_FIELDS} } }
  }
`;
const REVOKE = /* GraphQL */ `mutation Revoke($id: ID!) { revokeApiKey(id: $id) { ${KEY_FIELDS} } }`;
const VERIFY = /* GraphQL */ `
  query Verify($secret: String!, $required: [ApiKeyScope!]) {
    verifyApiKey(secret: $secret, requiredScopes: $required) {
      valid code scopes expiresAt apiKeyId partnerId apiKey { id keyName } partner { id name }
    }
  }
`;
const GATEWAY_VERIFY = /* GraphQL */ `
  query GatewayVerify($secret: String!, $required: [ApiKeyScope!]) {
    verifyApiKey(secret: $secret, requiredScopes: $required) { valid code scopes expiresAt apiKeyId partnerId apiKey { id keyName } }
  }
`;
const EVENTS = /* GraphQL */ `
  query Events($id: ID!) {
    apiKey(id: $id) {
      events { edges { node { action createdAt detail actor { username } apiKey { id } } } }
    }
  }
`;
const READS = /* GraphQL */ `
  query Reads($id: ID!, $partnerId: ID!) {
    apiKey(id: $id) { ${KEY_FIELDS} }
    apiKeys(partnerId: $partnerId, includeRevoked: true) { edges { node { ${KEY_FIELDS} } } }
    partner(id: $partnerId) { apiKeys(includeRevoked: true) { edges { node { ${KEY_FIELDS} } } } }
    node(id: $id) { ... on APIKey { ${KEY_FIELDS} } }
  }
`;

let clock = new Date("2027-03-01T09:00:00Z");
let server: TestServer;
let partnerGid: string;
let admin: SignedInUser;
let partnerAdmin: SignedInUser;
let developer: SignedInUser;
let support: SignedInUser;
let otherAdmin: SignedInUser;

beforeAll(async () => {
  server = await startTestServer({ now: () => clock });
  const prisma = server.app.services.prisma;
  const partner = await prisma.partnerOrganization.create({ data: { name: "Acme" } });
  const other = await prisma.partnerOrganization.create({ data: { name: "Other" } });
  partnerGid = encodeGlobalID("PartnerOrganization", partner.id);
  admin = await createUser(server, "keys-admin", "admin");
  support = await createUser(server, "keys-support", "support");
  partnerAdmin = await createUser(server, "keys-padmin", "partnerAdmin", partner.id);
  developer = await createUser(server, "keys-dev", "developer", partner.id);
  otherAdmin = await createUser(server, "keys-other", "partnerAdmin", other.id);
});
afterAll(async () => {
  await server?.close();
});

type Key = { id: string; keyName: string; tokenPrefix: string; scopes: string[]; isActive: boolean } & Record<
  string,
  unknown
>;

async function createKey(keyName: string, token = partnerAdmin.token, extra: Record<string, unknown> = {}) {
  const response = await server.gql<{ createApiKey: { secret: string; apiKey: Key } }>(
    CREATE,
    { input: { partnerId: partnerGid, keyName, scopes: ["USAGE_READ", "DOCS_READ"], ...extra } },
    token,
  );
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return response.data!.createApiKey;
}

async function verify(secret: string, required?: string[]) {
  const response = await server.gql<{ verifyApiKey: { valid: boolean; code: string; scopes: string[]; expiresAt: string | null } }>(
    VERIFY,
    { secret, required },
    admin.token,
  );
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return response.data!.verifyApiKey;
}

describe("createApiKey", () => {
  it("returns the secret once, in the recognisable format, and stores only its hash", async () => {
    const { secret, apiKey } = await createKey("checkout");
    expect(secret).toMatch(/^ppk_live_[0-9A-Za-z]{38}$/);
    expect(parseSecret(secret)).toEqual({ kind: "ppk", environment: "live" });
    expect(secret.startsWith(apiKey.tokenPrefix)).toBe(true);
    expect(apiKey.tokenPrefix.length).toBeGreaterThanOrEqual(16);
    expect(apiKey).toMatchObject({
      keyName: "checkout",
      scopes: ["USAGE_READ", "DOCS_READ"],
      isActive: true,
      lastUsedAt: null,
      partner: { id: partnerGid, name: "Acme" },
      createdBy: { username: "keys-padmin" },
    });

    const stored = await server.app.services.prisma.apiKey.findUniqueOrThrow({ where: { id: decodeId(apiKey.id) } });
    expect(stored.scopes).toEqual(["usage:read", "docs:read"]);
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect(JSON.stringify(stored)).not.toContain(secret.slice(9));

    for (const token of [admin.token, support.token, partnerAdmin.token, developer.token]) {
      const reads = await server.gql(READS, { id: apiKey.id, partnerId: partnerGid }, token);
      expect(reads.errors).toBeUndefined();
      expect(reads.data!.apiKey.keyName).toBe("checkout");
      expect(reads.data!.node.keyName).toBe("checkout");
      expect(JSON.stringify(reads)).not.toContain(secret.slice(apiKey.tokenPrefix.length));
    }
    const events = await server.gql(EVENTS, { id: apiKey.id }, admin.token);
    expect(JSON.stringify(events)).not.toContain(secret.slice(apiKey.tokenPrefix.length));
    expect(await verify(secret)).toMatchObject({ valid: true, code: "VALID", scopes: ["USAGE_READ", "DOCS_READ"] });
  });

  it("refuses an unknown scope, no scopes, a past expiry and an overlong name with BAD_USER_INPUT", async () => {
    const base = { partnerId: partnerGid, keyName: "bad", scopes: ["USAGE_READ"] };
    for (const input of [
      { ...base, scopes: ["USAGE_READ", "usage:read"] },
      { ...base, scopes: ["ROOT"] },
      { ...base, scopes: [] },
      { ...base, expiresAt: new Date(clock.getTime() - 1000).toISOString() },
      { ...base, keyName: "x".repeat(101) },
      { ...base, keyName: "   " },
    ]) {
      const response = await server.gql(CREATE, { input }, admin.token);
      expect(errorCodes(response), JSON.stringify(input)).toEqual(["BAD_USER_INPUT"]);
    }
    expect(await server.app.services.prisma.apiKey.count({ where: { keyName: "bad" } })).toBe(0);
  });

  it("keeps key names unique within a partner (CONFLICT), and refuses an unknown partner", async () => {
    await createKey("dup");
    const again = await server.gql(CREATE, { input: { partnerId: partnerGid, keyName: "dup", scopes: ["API_READ"] } }, admin.token);
    expect(errorCodes(again)).toEqual(["CONFLICT"]);
    const missing = await server.gql(
      CREATE,
      { input: { partnerId: encodeGlobalID("PartnerOrganization", "0190e0b4-0000-7000-8000-000000000000"), keyName: "x", scopes: ["API_READ"] } },
      admin.token,
    );
    expect(errorCodes(missing)).toEqual(["NOT_FOUND"]);
  });

  it("lets only admins and the partner's own partnerAdmin create keys", async () => {
    for (const token of [developer.token, support.token, otherAdmin.token]) {
      const response = await server.gql(CREATE, { input: { partnerId: partnerGid, keyName: "nope", scopes: ["API_READ"] } }, token);
      expect(errorCodes(response)).toEqual(["FORBIDDEN"]);
    }
    const signedOut = await server.gql(CREATE, { input: { partnerId: partnerGid, keyName: "nope", scopes: ["API_READ"] } });
    expect(errorCodes(signedOut)).toEqual(["UNAUTHENTICATED"]);
    expect(await server.app.services.prisma.apiKey.count({ where: { keyName: "nope" } })).toBe(0);
    const byAdmin = await createKey("by-admin", admin.token);
    // Partner members cannot read staff accounts: the creator shows as null to them, not as an error.
    const asMember = await server.gql(`query ($id: ID!) { apiKey(id: $id) { keyName createdBy { username } } }`, { id: byAdmin.apiKey.id }, developer.token);
    expect(asMember.errors).toBeUndefined();
    expect(asMember.data!.apiKey).toEqual({ keyName: "by-admin", createdBy: null });
    const asStaff = await server.gql(`query ($id: ID!) { apiKey(id: $id) { createdBy { username } } }`, { id: byAdmin.apiKey.id }, support.token);
    expect(asStaff.data!.apiKey).toEqual({ createdBy: { username: "keys-admin" } });
  });

  it("accepts a future expiry and answers EXPIRED once it has passed", async () => {
    const expiresAt = new Date(clock.getTime() + 3600_000);
    const { secret } = await createKey("short-lived", admin.token, { expiresAt: expiresAt.toISOString() });
    expect(await verify(secret)).toMatchObject({ valid: true, expiresAt: expiresAt.toISOString() });
    const saved = clock;
    clock = new Date(expiresAt.getTime() + 1);
    try {
      expect(await verify(secret)).toMatchObject({ valid: false, code: "EXPIRED" });
    } finally {
      clock = saved;
    }
  });
});

describe("rotateApiKey", () => {
  it("issues a new secret for the same key; the old one works through the grace period, then EXPIRED", async () => {
    const created = await createKey("rolling");
    const rotated = await server.gql(ROTATE, { id: created.apiKey.id, grace: 3600 }, partnerAdmin.token);
    expect(rotated.errors).toBeUndefined();
    const { secret, apiKey } = rotated.data!.rotateApiKey as { secret: string; apiKey: Key };
    expect(secret).not.toBe(created.secret);
    expect(parseSecret(secret)).not.toBeNull();
    expect(apiKey).toMatchObject({
      id: created.apiKey.id,
      keyName: "rolling",
      scopes: ["USAGE_READ", "DOCS_READ"],
      partner: { id: partnerGid },
      rotatedAt: clock.toISOString(),
      previousSecretExpiresAt: new Date(clock.getTime() + 3600_000).toISOString(),
    });
    expect(secret.startsWith(apiKey.tokenPrefix)).toBe(true);

    expect(await verify(secret)).toMatchObject({ valid: true, code: "VALID", expiresAt: null });
    expect(await verify(created.secret)).toMatchObject({
      valid: true,
      code: "VALID",
      expiresAt: new Date(clock.getTime() + 3600_000).toISOString(),
    });
    const saved = clock;
    clock = new Date(saved.getTime() + 3600_000 - 1);
    try {
      expect((await verify(created.secret)).code).toBe("VALID");
      clock = new Date(saved.getTime() + 3600_000);
      expect((await verify(created.secret)).code).toBe("EXPIRED");
      expect((await verify(secret)).code).toBe("VALID");
    } finally {
      clock = saved;
    }
  });

  it("with a grace period of 0 stops the old secret at once; a second rotation ends the first old secret", async () => {
    const created = await createKey("instant");
    expect((await verify(created.secret)).code).toBe("VALID");
    const first = await server.gql(ROTATE, { id: created.apiKey.id, grace: 0 }, admin.token);
    expect((await verify(created.secret)).code).toBe("EXPIRED");
    const second = await server.gql(ROTATE, { id: created.apiKey.id, grace: 600 }, admin.token);
    expect((await verify(created.secret)).code).toBe("NOT_FOUND");
    expect((await verify(first.data!.rotateApiKey.secret)).code).toBe("VALID");
    expect((await verify(second.data!.rotateApiKey.secret)).code).toBe("VALID");
  });

  it("refuses a grace period outside 0..7 days, and a revoked key", async () => {
    const created = await createKey("bounds");
    for (const grace of [-1, 7 * 24 * 3600 + 1]) {
      expect(errorCodes(await server.gql(ROTATE, { id: created.apiKey.id, grace }, admin.token))).toEqual(["BAD_USER_INPUT"]);
    }
    expect((await server.gql(ROTATE, { id: created.apiKey.id, grace: 7 * 24 * 3600 }, admin.token)).errors).toBeUndefined();
    await server.gql(REVOKE, { id: created.apiKey.id }, admin.token);
    expect(errorCodes(await server.gql(ROTATE, { id: created.apiKey.id, grace: 0 }, admin.token))).toEqual(["CONFLICT"]);
  });

  it("lets only admins and the partner's own partnerAdmin rotate", async () => {
    const created = await createKey("guarded");
    for (const token of [developer.token, support.token, otherAdmin.token]) {
      expect(errorCodes(await server.gql(ROTATE, { id: created.apiKey.id, grace: 0 }, token))).toEqual(["FORBIDDEN"]);
    }
    expect((await verify(created.secret)).code).toBe("VALID");
  });
});

describe("revokeApiKey", () => {
  it("refuses the key from the next verification on, hides it from default lists, and is safe to repeat", async () => {
    const created = await createKey("doomed");
    expect((await verify(created.secret)).code).toBe("VALID");
    const revoked = await server.gql(REVOKE, { id: created.apiKey.id }, partnerAdmin.token);
    expect(revoked.errors).toBeUndefined();
    expect(revoked.data!.revokeApiKey).toMatchObject({ isActive: false, revokedAt: clock.toISOString() });
    expect(await verify(created.secret)).toMatchObject({ valid: false, code: "REVOKED" });

    const again = await server.gql(REVOKE, { id: created.apiKey.id }, partnerAdmin.token);
    expect(again.data!.revokeApiKey).toMatchObject({ isActive: false, revokedAt: clock.toISOString() });

    const list = await server.gql(`{ apiKeys(first: 100) { edges { node { id } } } }`, {}, partnerAdmin.token);
    expect(list.data!.apiKeys.edges.map((edge: { node: { id: string } }) => edge.node.id)).not.toContain(created.apiKey.id);
    const withRevoked = await server.gql(`{ apiKeys(first: 100, includeRevoked: true) { edges { node { id } } } }`, {}, partnerAdmin.token);
    expect(withRevoked.data!.apiKeys.edges.map((edge: { node: { id: string } }) => edge.node.id)).toContain(created.apiKey.id);

    const events = await server.gql(EVENTS, { id: created.apiKey.id }, admin.token);
    expect(events.data!.apiKey.events.edges.map((edge: { node: { action: string } }) => edge.node.action)).toEqual([
      "apiKeyRevoked",
      "apiKeyCreated",
    ]);
  });

  it("lets only admins and the partner's own partnerAdmin revoke", async () => {
    const created = await createKey("kept");
    for (const token of [developer.token, support.token, otherAdmin.token]) {
      expect(errorCodes(await server.gql(REVOKE, { id: created.apiKey.id }, token))).toEqual(["FORBIDDEN"]);
    }
    expect(errorCodes(await server.gql(REVOKE, { id: created.apiKey.id }))).toEqual(["UNAUTHENTICATED"]);
    expect((await verify(created.secret)).code).toBe("VALID");
  });
});

describe("APIKey.events", () => {
  it("records who created, rotated and revoked a key, for staff and the partner's partnerAdmins only", async () => {
    const created = await createKey("audited");
    await server.gql(ROTATE, { id: created.apiKey.id, grace: 60 }, admin.token);
    await server.gql(REVOKE, { id: created.apiKey.id }, partnerAdmin.token);
    const events = await server.gql(EVENTS, { id: created.apiKey.id }, partnerAdmin.token);
    expect(events.errors).toBeUndefined();
    expect(events.data!.apiKey.events.edges.map((edge: { node: unknown }) => edge.node)).toEqual([
      expect.objectContaining({ action: "apiKeyRevoked", actor: { username: "keys-padmin" }, apiKey: { id: created.apiKey.id } }),
      // A partner's members cannot read staff accounts: the acting admin shows as null to them.
      expect.objectContaining({ action: "apiKeyRotated", actor: null, detail: expect.objectContaining({ gracePeriodSeconds: 60 }) }),
      expect.objectContaining({ action: "apiKeyCreated", actor: { username: "keys-padmin" }, detail: expect.objectContaining({ keyName: "audited", scopes: ["usage:read", "docs:read"] }) }),
    ]);
    const asAdmin = await server.gql(EVENTS, { id: created.apiKey.id }, admin.token);
    expect(asAdmin.data!.apiKey.events.edges[1].node.actor).toEqual({ username: "keys-admin" });
    // Support reads the audit log, so a key's history too.
    expect((await server.gql(EVENTS, { id: created.apiKey.id }, support.token)).data!.apiKey.events.edges).toHaveLength(3);
    const denied = await server.gql(EVENTS, { id: created.apiKey.id }, developer.token);
    expect(denied.data!.apiKey).toEqual({ events: null });
    expect((await server.gql(EVENTS, { id: created.apiKey.id }, otherAdmin.token)).data!.apiKey).toBeNull();
  });
});

describe("a suspended partner", () => {
  it("refuses its partnerAdmin's key writes and its keys' verification, until reactivated", async () => {
    const prisma = server.app.services.prisma;
    const partner = await prisma.partnerOrganization.create({ data: { name: "Sleepy" } });
    const gid = encodeGlobalID("PartnerOrganization", partner.id);
    const sleepyAdmin = await createUser(server, "sleepy-admin", "partnerAdmin", partner.id);
    const created = await server.gql(CREATE, { input: { partnerId: gid, keyName: "k", scopes: ["API_READ"] } }, sleepyAdmin.token);
    const { secret, apiKey } = created.data!.createApiKey as { secret: string; apiKey: Key };
    expect((await verify(secret)).code).toBe("VALID");

    const suspend = await server.gql(
      `mutation ($id: ID!) { updatePartner(id: $id, input: { status: suspended }) { status } }`,
      { id: gid },
      admin.token,
    );
    expect(suspend.errors).toBeUndefined();
    expect(await verify(secret)).toMatchObject({ valid: false, code: "PARTNER_SUSPENDED" });
    for (const response of [
      await server.gql(CREATE, { input: { partnerId: gid, keyName: "k2", scopes: ["API_READ"] } }, sleepyAdmin.token),
      await server.gql(ROTATE, { id: apiKey.id, grace: 0 }, sleepyAdmin.token),
      await server.gql(REVOKE, { id: apiKey.id }, sleepyAdmin.token),
    ]) {
      expect(errorCodes(response)).toEqual(["FORBIDDEN"]);
    }

    await server.gql(`mutation ($id: ID!) { updatePartner(id: $id, input: { status: active }) { status } }`, { id: gid }, admin.token);
    expect((await verify(secret)).code).toBe("VALID");
  });
});

describe("service credentials", () => {
  it("are created by admins, verify keys for the gateway, and stop at once when revoked", async () => {
    const created = await server.gql(
      `mutation ($name: String!) { createServiceCredential(name: $name) { secret serviceCredential { id name tokenPrefix isActive } } }`,
      { name: "edge-gateway" },
      admin.token,
    );
    expect(created.errors).toBeUndefined();
    const { secret, serviceCredential } = created.data!.createServiceCredential;
    expect(secret).toMatch(/^pps_live_/);
    expect(secret.startsWith(serviceCredential.tokenPrefix)).toBe(true);
    const stored = await server.app.services.prisma.serviceCredential.findFirstOrThrow({ where: { name: "edge-gateway" } });
    expect(JSON.stringify(stored)).not.toContain(secret);

    const dup = await server.gql(`mutation { createServiceCredential(name: "edge-gateway") { secret } }`, {}, admin.token);
    expect(errorCodes(dup)).toEqual(["CONFLICT"]);

    const key = await createKey("gateway-checked");
    const asGateway = await server.gql(GATEWAY_VERIFY, { secret: key.secret, required: ["USAGE_READ"] }, secret);
    expect(asGateway.errors).toBeUndefined();
    expect(asGateway.data!.verifyApiKey).toMatchObject({
      valid: true,
      code: "VALID",
      apiKeyId: key.apiKey.id,
      partnerId: partnerGid,
      apiKey: { id: key.apiKey.id, keyName: "gateway-checked" },
    });

    // A partner key is not a bearer token for this API, so it cannot verify other keys.
    const other = await createKey("not-a-gateway");
    expect(errorCodes(await server.gql(VERIFY, { secret: key.secret }, other.secret))).toEqual(["UNAUTHENTICATED"]);
    for (const token of [developer.token, partnerAdmin.token, support.token]) {
      expect(errorCodes(await server.gql(VERIFY, { secret: key.secret }, token))).toEqual(["FORBIDDEN"]);
    }

    const list = await server.gql(`{ serviceCredentials { edges { node { name } } } }`, {}, admin.token);
    expect(list.data!.serviceCredentials.edges).toEqual([{ node: { name: "edge-gateway" } }]);
    const revoked = await server.gql(
      `mutation ($id: ID!) { revokeServiceCredential(id: $id) { isActive revokedAt } }`,
      { id: serviceCredential.id },
      admin.token,
    );
    expect(revoked.data!.revokeServiceCredential).toMatchObject({ isActive: false });
    expect(errorCodes(await server.gql(VERIFY, { secret: key.secret }, secret))).toEqual(["UNAUTHENTICATED"]);
  });
});

function decodeId(globalId: string): string {
  return Buffer.from(globalId, "base64").toString("utf8").split(":").slice(1).join(":");
}
