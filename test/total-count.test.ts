import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSecret, hashSecret } from "../src/auth/api-key-secret.js";
import { USAGE_COUNT_CAP } from "../src/schema/usage-log.js";
import { createWorld, type World } from "./support/matrix.js";
import { startTestServer, type TestServer } from "./support/server.js";

// Every connection answers totalCount from the same filtered query as its page, so a count never
// includes a row the viewer may not see; usage logs are counted up to a cap.

let server: TestServer;
let world: World;
const keys: Record<"a1" | "a2" | "aRevoked" | "b1", string> = { a1: "", a2: "", aRevoked: "", b1: "" };
const LOGS_OF_A = 3;
const LOGS_OF_B = USAGE_COUNT_CAP + 50;

beforeAll(async () => {
  server = await startTestServer({ watchStatements: true });
  world = await createWorld(server);
  const prisma = server.app.services.prisma;
  const key = async (partnerId: string, keyName: string, revoked = false) => {
    const { secret, tokenPrefix } = generateSecret("ppk", "live");
    const row = await prisma.apiKey.create({
      data: {
        keyName,
        tokenPrefix,
        scopes: ["usage:read"],
        partnerId,
        createdById: world.users.admin.id,
        secretHash: hashSecret(server.app.secrets.apiKeyHashSecret, secret),
        revokedAt: revoked ? new Date() : null,
        isActive: !revoked,
        events: {
          create: [
            { action: "apiKeyCreated", actorUserId: world.users.admin.id, partnerId },
            ...(revoked ? [{ action: "apiKeyRevoked" as const, actorUserId: world.users.admin.id, partnerId }] : []),
          ],
        },
      },
    });
    return row.id;
  };
  keys.a1 = await key(world.partnerA.id, "a1");
  keys.a2 = await key(world.partnerA.id, "a2");
  keys.aRevoked = await key(world.partnerA.id, "a-revoked", true);
  keys.b1 = await key(world.partnerB.id, "b1");
  const logs = (partnerId: string, apiKeyId: string, count: number) =>
    Array.from({ length: count }, (_, i) => ({
      partnerId,
      apiKeyId,
      endpoint: "/v1/things",
      method: "GET" as const,
      statusCode: 200,
      occurredAt: new Date(Date.now() - (i + 1) * 1000),
    }));
  await prisma.usageLog.createMany({ data: logs(world.partnerA.id, keys.a1, LOGS_OF_A) });
  await prisma.usageLog.createMany({ data: logs(world.partnerB.id, keys.b1, LOGS_OF_B) });
  for (const name of ["gw-one", "gw-two"]) {
    await server.app.services.serviceCredentials.issue({ name, actorUserId: world.users.admin.id });
  }
  await server.app.services.serviceCredentials.revoke({
    id: (await prisma.serviceCredential.findFirstOrThrow({ where: { name: "gw-two" } })).id,
    actorUserId: world.users.admin.id,
  });
}, 120_000);
afterAll(async () => {
  await server?.close();
});

async function ask<T = Record<string, any>>(actor: "admin" | "support" | "partnerAdminA" | "developerA" | "noPartner", query: string, variables = {}) {
  const response = await server.gql(query, variables, world.token(actor));
  expect(response.errors).toBeUndefined();
  return response.data as T;
}

describe("totalCount", () => {
  it("apiKeys counts the keys the viewer may read under the same filters, whatever the page size", async () => {
    const LIST = `query ($p: ID, $r: Boolean) { apiKeys(partnerId: $p, includeRevoked: $r, first: 1) { totalCount edges { node { id } } } }`;
    expect((await ask("admin", LIST)).apiKeys.totalCount).toBe(3);
    expect((await ask("support", LIST, { r: true })).apiKeys.totalCount).toBe(4);
    expect((await ask("partnerAdminA", LIST)).apiKeys).toMatchObject({ totalCount: 2, edges: [{}] });
    expect((await ask("developerA", LIST, { r: true })).apiKeys.totalCount).toBe(3);
    expect((await ask("developerA", LIST, { p: world.partnerB.globalId, r: true })).apiKeys.totalCount).toBe(0);
    expect((await ask("noPartner", LIST, { r: true })).apiKeys.totalCount).toBe(0);
  });

  it("PartnerOrganization.apiKeys and APIKey.events count within their parent and the viewer's rights", async () => {
    const NESTED = `query ($id: ID!) {
      partner(id: $id) {
        all: apiKeys(includeRevoked: true, first: 1) { totalCount edges { node { events(first: 1) { totalCount } } } }
        live: apiKeys { totalCount }
      }
    }`;
    const asAdmin = (await ask("partnerAdminA", NESTED, { id: world.partnerA.globalId })).partner;
    expect(asAdmin.all.totalCount).toBe(3);
    expect(asAdmin.live.totalCount).toBe(2);
    // The newest key first: the revoked one, created and revoked.
    expect(asAdmin.all.edges[0].node.events.totalCount).toBe(2);
    const asDeveloper = (await ask("developerA", NESTED, { id: world.partnerA.globalId })).partner;
    expect(asDeveloper.all.totalCount).toBe(3);
    expect(asDeveloper.all.edges[0].node.events).toBeNull();
  });

  it("serviceCredentials counts with its filter", async () => {
    const LIST = `query ($r: Boolean) { serviceCredentials(includeRevoked: $r, first: 1) { totalCount } }`;
    expect((await ask("admin", LIST)).serviceCredentials.totalCount).toBe(1);
    expect((await ask("admin", LIST, { r: true })).serviceCredentials.totalCount).toBe(2);
  });

  it("usageLogs counts the viewer's rows exactly up to the cap, then answers the cap with a flag", async () => {
    const LOGS = `query ($f: UsageLogFilter) { usageLogs(filter: $f, first: 2) { totalCount totalCountCapped edges { node { id } } } }`;
    const before = server.statements!.texts.length;
    const everything = (await ask("admin", LOGS)).usageLogs;
    expect(everything).toMatchObject({ totalCount: USAGE_COUNT_CAP, totalCountCapped: true });
    expect(everything.edges).toHaveLength(2);
    // The count reads at most one row past the cap, however large the table.
    const counts = server.statements!.texts.slice(before).filter((text) => /count/i.test(text) && /"UsageLog"/.test(text));
    expect(counts).toHaveLength(1);
    expect(counts[0]).toMatch(/LIMIT/i);

    expect((await ask("partnerAdminA", LOGS)).usageLogs).toMatchObject({ totalCount: LOGS_OF_A, totalCountCapped: false });
    expect((await ask("developerA", LOGS, { f: { partnerId: world.partnerB.globalId } })).usageLogs).toMatchObject({
      totalCount: 0,
      totalCountCapped: false,
    });
    expect((await ask("support", LOGS, { f: { partnerId: world.partnerA.globalId } })).usageLogs.totalCount).toBe(LOGS_OF_A);

    const nested = await ask(
      "partnerAdminA",
      `query ($p: ID!, $k: ID!) {
        partner(id: $p) { usageLogs(first: 1) { totalCount totalCountCapped } }
        apiKey(id: $k) { usageLogs(first: 1, filter: { statusClass: "2xx" }) { totalCount } }
      }`,
      { p: world.partnerA.globalId, k: world.globalId("APIKey", keys.a1) },
    );
    expect(nested.partner.usageLogs).toEqual({ totalCount: LOGS_OF_A, totalCountCapped: false });
    expect(nested.apiKey.usageLogs.totalCount).toBe(LOGS_OF_A);
  });

  it("is not counted when not asked for", async () => {
    const before = server.statements!.texts.length;
    await ask("admin", `{ usageLogs(first: 1) { edges { node { id } } } apiKeys(first: 1) { edges { node { id } } } }`);
    expect(server.statements!.texts.slice(before).filter((text) => /count\(/i.test(text))).toEqual([]);
  });
});
