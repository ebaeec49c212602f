// Every read policy in its three spellings, over the same viewers and rows: the Prisma `where`
// (run in the database), the boolean for a row in hand, and the scope map checked by the very
// scope functions scope-auth is given. They must name the same rows, or a list would show what a
// lookup hides (or the reverse).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Caller } from "../src/auth/callers.js";
import type { AccessSubject } from "../src/schema/access.js";
import { apiKeyPolicy } from "../src/schema/api-key.js";
import { auditEventPolicy } from "../src/schema/audit-event.js";
import { builder } from "../src/schema/builder.js";
import type { Context } from "../src/schema/context.js";
import { docPolicy } from "../src/schema/developer-doc.js";
import { changelogPolicy } from "../src/schema/doc-history.js";
import { partnerPolicy } from "../src/schema/partner.js";
import { serviceCredentialPolicy } from "../src/schema/service-credential.js";
import { usageLogPolicy } from "../src/schema/usage-log.js";
import { userPolicy } from "../src/schema/user.js";
import "../src/schema/index.js";
import { createWorld, type World } from "./support/matrix.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey } from "./support/usage.js";

let server: TestServer;
let world: World;
let subjects: Array<[string, AccessSubject]>;

interface Policy<Row> {
  scopes(row: Row): true | Record<string, unknown>;
  allows(subject: AccessSubject, row: Row): boolean;
  where(subject: AccessSubject): object;
}

beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
  const prisma = server.app.services.prisma;
  const { partnerA, partnerB, users } = world;
  const keyA = await createKey(server, partnerA.id, users.partnerAdminA.id);
  const keyB = await createKey(server, partnerB.id, users.partnerAdminB.id);
  for (const key of [keyA, keyB]) {
    await prisma.usageLog.create({ data: { partnerId: key.partnerId, apiKeyId: key.id, endpoint: "/x", method: "GET", statusCode: 200 } });
    await prisma.auditEvent.create({ data: { action: "apiKeyCreated", partnerId: key.partnerId, apiKeyId: key.id } });
  }
  await prisma.auditEvent.create({ data: { action: "serviceCredentialCreated" } });
  await createGatewayCredential(server, "policy-gateway");
  await createGatewayCredential(server, "policy-other");
  let n = 0;
  for (const [partnerId, isPublished] of [
    [null, true],
    [null, false],
    [partnerA.id, true],
    [partnerA.id, false],
    [partnerB.id, true],
  ] as const) {
    const doc = await prisma.developerDoc.create({
      data: { title: "t", slug: `policy-${n++}`, content: "c", apiVersion: "v1", isPublished, partnerId, ownerId: users.support.id },
    });
    // Changelog entries as published, and as published before the doc moved to (or from) a partner.
    for (const entryPartnerId of new Set([partnerId, null, partnerA.id])) {
      await prisma.docChangelogEntry.create({
        data: { docId: doc.id, apiVersion: "v1", partnerId: entryPartnerId, title: "t", publishedAt: new Date() },
      });
    }
  }
  const gateway = await prisma.serviceCredential.findFirstOrThrow({ where: { name: "policy-gateway" } });
  const as = (caller: Caller, authenticatedNow: string[] = []): AccessSubject => ({ ...caller, authenticatedNow: new Set(authenticatedNow) });
  const viewerOf = async (id: string) => {
    const user = await prisma.user.findUniqueOrThrow({ where: { id } });
    return { id, username: user.username, role: user.role, partnerId: user.partnerId, sessionId: "s", sessionExpiresAt: new Date(8.64e15) };
  };
  subjects = [
    ["signed out", as({ viewer: null, service: null })],
    ["the gateway", as({ viewer: null, service: { id: gateway.id, name: gateway.name } })],
    ["signed out, just signed up as developerB", as({ viewer: null, service: null }, [users.developerB.id])],
  ];
  for (const [actor, user] of Object.entries(users)) {
    subjects.push([actor, as({ viewer: await viewerOf(user.id), service: null })]);
  }
});

afterAll(async () => {
  await server?.close();
});

/** What scope-auth decides for a scope map, with the scope functions the builder gives it. */
async function scopesAdmit(map: true | Record<string, unknown>, subject: AccessSubject): Promise<boolean> {
  if (map === true) return true;
  const context = { ...subject, prisma: server.app.services.prisma } as unknown as Context;
  const loaders = (await builder.options.scopeAuth!.authScopes(context)) as Record<string, unknown>;
  for (const [scope, parameter] of Object.entries(map)) {
    const loader = loaders[scope];
    if (typeof loader === "function" ? await (loader as (p: unknown) => unknown)(parameter) : loader === true && parameter === true) return true;
  }
  return false;
}

async function check<Row extends { id: string }>(
  rows: () => Promise<Row[]>,
  inDatabase: (where: object) => Promise<Array<{ id: string }>>,
  policy: Policy<Row>,
) {
  const all = await rows();
  expect(all.length).toBeGreaterThan(1);
  for (const [name, subject] of subjects) {
    const byWhere = (await inDatabase(policy.where(subject))).map((row) => row.id).sort();
    const byBoolean = all.filter((row) => policy.allows(subject, row)).map((row) => row.id).sort();
    const byScopes: string[] = [];
    for (const row of all) if (await scopesAdmit(policy.scopes(row), subject)) byScopes.push(row.id);
    expect({ subject: name, rows: byBoolean }).toEqual({ subject: name, rows: byWhere });
    expect({ subject: name, rows: byScopes.sort() }).toEqual({ subject: name, rows: byWhere });
  }
}

describe("each read policy names the same rows in its three spellings", () => {
  const prisma = () => server.app.services.prisma;

  it("partners", () =>
    check(() => prisma().partnerOrganization.findMany(), (where) => prisma().partnerOrganization.findMany({ where, select: { id: true } }), partnerPolicy));

  it("users", () =>
    check(() => prisma().user.findMany({ select: { id: true, partnerId: true } }), (where) =>
      prisma().user.findMany({ where, select: { id: true } }),
      userPolicy));

  it("API keys", () =>
    check<{ id: string; partnerId: string }>(() => prisma().apiKey.findMany({ select: { id: true, partnerId: true } }), (where) =>
      prisma().apiKey.findMany({ where, select: { id: true } }),
      apiKeyPolicy));

  it("usage logs", () =>
    check<{ id: string; partnerId: string }>(() => prisma().usageLog.findMany(), (where) => prisma().usageLog.findMany({ where, select: { id: true } }), usageLogPolicy));

  it("audit events", () =>
    check<{ id: string; partnerId: string | null }>(() => prisma().auditEvent.findMany(), (where) => prisma().auditEvent.findMany({ where, select: { id: true } }), auditEventPolicy));

  it("service credentials", () =>
    check(() => prisma().serviceCredential.findMany({ select: { id: true } }), (where) =>
      prisma().serviceCredential.findMany({ where, select: { id: true } }),
      serviceCredentialPolicy));

  it("developer docs (drafts included)", () =>
    check<{ id: string; partnerId: string | null; isPublished: boolean }>(() => prisma().developerDoc.findMany(), (where) => prisma().developerDoc.findMany({ where, select: { id: true } }), docPolicy));

  it("changelog entries (with their doc's state now)", () =>
    check<{ id: string; partnerId: string | null; doc: { isPublished: boolean; partnerId: string | null } }>(
      () => prisma().docChangelogEntry.findMany({ select: { id: true, partnerId: true, doc: { select: { isPublished: true, partnerId: true } } } }),
      (where) => prisma().docChangelogEntry.findMany({ where, select: { id: true } }),
      changelogPolicy,
    ));
});
