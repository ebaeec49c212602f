import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type Actor, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { sseStream } from "./support/streams.js";
import { createUser } from "./support/users.js";

const EVENTS = /* GraphQL */ `
  query Events($filter: AuditEventFilter, $first: Int, $after: String) {
    auditEvents(filter: $filter, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id action detail createdAt
          actor { id } partner { id } user { id } apiKey { id } developerDoc { id } serviceCredential { id }
        }
      }
    }
  }
`;

interface Event {
  id: string;
  action: string;
  detail: Record<string, unknown> | null;
  createdAt: string;
  actor: { id: string } | null;
  partner: { id: string } | null;
  user: { id: string } | null;
  apiKey: { id: string } | null;
  developerDoc: { id: string } | null;
  serviceCredential: { id: string } | null;
}

let server: TestServer;
let world: World;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
});
afterAll(async () => {
  await server?.close();
});

const ask = (actor: Actor, query: string, variables: Record<string, unknown> = {}) => server.gql(query, variables, world.token(actor));
async function ok(actor: Actor, query: string, variables: Record<string, unknown> = {}) {
  const response = await ask(actor, query, variables);
  expect(response.errors, JSON.stringify(response.errors)).toBeUndefined();
  return response.data!;
}
async function events(actor: Actor, filter: Record<string, unknown> = {}, first = 100) {
  const data = await ok(actor, EVENTS, { filter, first });
  return data.auditEvents as { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string }; edges: Array<{ node: Event }> };
}
const nodes = async (actor: Actor, filter: Record<string, unknown> = {}) => (await events(actor, filter)).edges.map((edge) => edge.node);

describe("every state-changing mutation writes an audit event", () => {
  it("partners, users and roles: actor, target and a diff", async () => {
    const created = await ok(
      "admin",
      `mutation { createPartner(input: { name: "Audited", supportTier: premium, primaryContact: { email: "audited-contact@example.test", username: "audited-contact" } }) { partner { id } } }`,
    );
    const partnerId = created.createPartner.partner.id as string;
    await ok("admin", `mutation ($id: ID!) { updatePartner(id: $id, input: { status: suspended, name: "Audited Ltd" }) { id } }`, { id: partnerId });
    const person = await createUser(server, "audited-person", "developer");
    await ok("admin", `mutation ($u: ID!, $p: ID) { setUserPartner(userId: $u, partnerId: $p) { id } }`, { u: person.globalId, p: partnerId });
    await ok("admin", `mutation ($u: ID!) { setUserRole(userId: $u, role: partnerAdmin) { id } }`, { u: person.globalId });

    const all = await nodes("admin", { partnerId });
    // Creating the partner also invited its contact (in the same transaction).
    expect(all.filter((event) => event.action === "invitationCreated")).toHaveLength(1);
    const log = all.filter((event) => event.action !== "invitationCreated");
    expect(log.map((event) => event.action)).toEqual(["userRoleChanged", "userPartnerChanged", "partnerUpdated", "partnerCreated"]);
    for (const event of log) {
      expect(event.actor).toEqual({ id: world.users.admin.globalId });
      expect(event.partner).toEqual({ id: partnerId });
    }
    expect(log[0]).toMatchObject({ user: { id: person.globalId }, detail: { role: { from: "developer", to: "partnerAdmin" } } });
    expect(log[1]).toMatchObject({ user: { id: person.globalId }, detail: { change: "joined" } });
    expect(log[2]!.detail).toEqual({ name: { from: "Audited", to: "Audited Ltd" }, status: { from: "active", to: "suspended" } });
    expect(log[3]!.detail).toMatchObject({ name: "Audited", status: "active", supportTier: "premium" });
  });

  it("keys and service credentials, with no secret or hash in any event", async () => {
    const created = await ok(
      "partnerAdminA",
      `mutation ($p: ID!) { createApiKey(input: { partnerId: $p, keyName: "audited-key", scopes: [USAGE_READ, USAGE_WRITE] }) { secret apiKey { id } } }`,
      { p: world.partnerA.globalId },
    );
    const keyId = created.createApiKey.apiKey.id as string;
    const rotated = await ok("partnerAdminA", `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 0) { secret } }`, { id: keyId });
    await ok("partnerAdminA", `mutation ($id: ID!) { updateApiKey(id: $id, input: { scopes: [USAGE_READ] }) { id } }`, { id: keyId });
    await ok("partnerAdminA", `mutation ($id: ID!) { disableApiKey(id: $id) { id } }`, { id: keyId });
    await ok("partnerAdminA", `mutation ($id: ID!) { enableApiKey(id: $id) { id } }`, { id: keyId });
    await ok("admin", `mutation ($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: keyId });
    const credential = await ok("admin", `mutation { createServiceCredential(name: "audited-gateway") { secret serviceCredential { id } } }`);
    const credentialId = credential.createServiceCredential.serviceCredential.id as string;
    await ok("admin", `mutation ($id: ID!) { revokeServiceCredential(id: $id) { id } }`, { id: credentialId });

    const keyLog = (await nodes("admin", { partnerId: world.partnerA.globalId })).filter((event) => event.apiKey?.id === keyId);
    expect(keyLog.map((event) => [event.action, event.actor?.id])).toEqual([
      ["apiKeyRevoked", world.users.admin.globalId],
      ["apiKeyEnabled", world.users.partnerAdminA.globalId],
      ["apiKeyDisabled", world.users.partnerAdminA.globalId],
      ["apiKeyUpdated", world.users.partnerAdminA.globalId],
      ["apiKeyRotated", world.users.partnerAdminA.globalId],
      ["apiKeyCreated", world.users.partnerAdminA.globalId],
    ]);
    const credentialLog = (await nodes("admin")).filter((event) => event.serviceCredential?.id === credentialId);
    expect(credentialLog.map((event) => event.action)).toEqual(["serviceCredentialRevoked", "serviceCredentialCreated"]);

    const everything = JSON.stringify(await nodes("admin"));
    const prisma = server.app.services.prisma;
    const hashes = [
      ...(await prisma.apiKey.findMany({ select: { secretHash: true, previousSecretHash: true } })).flatMap((k) => [k.secretHash, k.previousSecretHash]),
      ...(await prisma.serviceCredential.findMany({ select: { secretHash: true } })).map((c) => c.secretHash),
    ].filter((hash): hash is string => !!hash);
    for (const secret of [created.createApiKey.secret, rotated.rotateApiKey.secret, credential.createServiceCredential.secret, ...hashes]) {
      expect(everything).not.toContain(secret);
    }
  });

  it("docs: create, edit (content as a length, not the text), publish with its note, unpublish, delete", async () => {
    const created = await ok(
      "support",
      `mutation { createDeveloperDoc(input: { title: "Audited doc", slug: "audited-doc", content: "Private draft text", apiVersion: "v3" }) { id } }`,
    );
    const docId = created.createDeveloperDoc.id as string;
    await ok("support", `mutation ($id: ID!) { updateDeveloperDoc(id: $id, input: { content: "Longer private text" }) { id } }`, { id: docId });
    await ok("support", `mutation ($id: ID!) { publishDeveloperDoc(id: $id, note: "Launch") { id } }`, { id: docId });
    await ok("admin", `mutation ($id: ID!) { unpublishDeveloperDoc(id: $id) { id } }`, { id: docId });
    const before = await nodes("admin", { actorId: world.users.support.globalId, action: "developerDocUpdated" });
    expect(before[0]).toMatchObject({
      developerDoc: { id: docId },
      partner: null,
      detail: { content: { changed: true, fromLength: 18, toLength: 19 } },
    });
    expect(JSON.stringify(before)).not.toContain("private text");
    await ok("admin", `mutation ($id: ID!) { deleteDeveloperDoc(id: $id) }`, { id: docId });

    const log = (await nodes("admin")).filter((event) => event.action.startsWith("developerDoc")).slice(0, 5);
    expect(log.map((event) => [event.action, event.actor?.id])).toEqual([
      ["developerDocDeleted", world.users.admin.globalId],
      ["developerDocUnpublished", world.users.admin.globalId],
      ["developerDocPublished", world.users.support.globalId],
      ["developerDocUpdated", world.users.support.globalId],
      ["developerDocCreated", world.users.support.globalId],
    ]);
    // The doc is gone; its events stay, the deletion naming what was deleted.
    expect(log.every((event) => event.developerDoc === null)).toBe(true);
    expect(log[0]!.detail).toMatchObject({ title: "Audited doc", slug: "audited-doc", apiVersion: "v3" });
    expect(log[2]!.detail).toMatchObject({ note: "Launch", republished: false });
  });
});

describe("auditEvents", () => {
  it("filters by actor, partner, action and time, counting what it filters", async () => {
    const start = new Date();
    await ok("admin", `mutation ($id: ID!) { updatePartner(id: $id, input: { supportTier: enterprise }) { id } }`, { id: world.partnerB.globalId });
    await ok("admin", `mutation ($id: ID!) { updatePartner(id: $id, input: { supportTier: standard }) { id } }`, { id: world.partnerB.globalId });
    const end = new Date(Date.now() + 1);
    const filter = { partnerId: world.partnerB.globalId, action: "partnerUpdated", actorId: world.users.admin.globalId };
    const inWindow = await events("support", { ...filter, from: start.toISOString(), to: end.toISOString() });
    expect(inWindow.totalCount).toBe(2);
    expect(inWindow.edges.map((edge) => edge.node.detail)).toEqual([
      { supportTier: { from: "enterprise", to: "standard" } },
      { supportTier: { from: "standard", to: "enterprise" } },
    ]);
    expect((await events("admin", { ...filter, to: start.toISOString() })).totalCount).toBe(0);
    expect((await events("admin", { ...filter, actorId: world.users.support.globalId })).totalCount).toBe(0);
    const page = await events("admin", filter, 1);
    expect(page.edges).toHaveLength(1);
    expect(page.pageInfo.hasNextPage).toBe(true);
  });

  it("shows a partnerAdmin only its own partner's events, and refuses developers and signed-out callers", async () => {
    await ok("admin", `mutation ($id: ID!) { updatePartner(id: $id, input: { name: "Partner B" }) { id } }`, { id: world.partnerB.globalId });
    await ok("admin", `mutation ($id: ID!) { updatePartner(id: $id, input: { supportTier: premium }) { id } }`, { id: world.partnerB.globalId });
    const mine = await events("partnerAdminA");
    expect(mine.edges.length).toBeGreaterThan(0);
    expect(mine.totalCount).toBe(mine.edges.length);
    expect(mine.edges.every((edge) => edge.node.partner?.id === world.partnerA.globalId)).toBe(true);
    // Asking for partner B's events by filter answers nothing, not even a count.
    const theirs = await events("partnerAdminA", { partnerId: world.partnerB.globalId });
    expect(theirs).toMatchObject({ totalCount: 0, edges: [] });
    expect(JSON.stringify(await ask("partnerAdminA", EVENTS, {}))).not.toContain(world.partnerB.id);
    // A staff actor is not readable by a partner's member: the event shows no actor.
    const byStaff = await nodes("partnerAdminA", { actorId: world.users.admin.globalId });
    expect(byStaff.length).toBeGreaterThan(0);
    expect(byStaff.every((event) => event.actor === null)).toBe(true);

    for (const actor of ["developerA", "noPartner"] as const) expect(errorCodes(await ask(actor, EVENTS))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await ask("signedOut", EVENTS))).toEqual(["UNAUTHENTICATED"]);
    // An event of partner B by node id answers null to partner A's partnerAdmin.
    const bEvent = (await nodes("admin", { partnerId: world.partnerB.globalId }))[0]!;
    expect((await ok("partnerAdminA", `query ($id: ID!) { node(id: $id) { id } }`, { id: bEvent.id })).node).toBeNull();
    expect((await ok("support", `query ($id: ID!) { node(id: $id) { id } }`, { id: bEvent.id })).node).toEqual({ id: bEvent.id });
  });
});

describe("@live", () => {
  it("an audit log under @live shows a new event without asking again", async () => {
    const live = sseStream(server.url, `query @live { auditEvents(filter: { action: userRoleChanged }) { totalCount } }`, {}, world.token("support"));
    try {
      const first = await live.next();
      const before = (first!.data as { auditEvents: { totalCount: number } }).auditEvents.totalCount;
      const person = await createUser(server, "live-audited", "developer");
      await ok("admin", `mutation ($u: ID!) { setUserRole(userId: $u, role: support) { id } }`, { u: person.globalId });
      // An invalidation from an earlier change (flushed at most once a second) may re-send the old
      // result first; the role change's result follows it.
      let next = await live.next();
      while (next && JSON.stringify(next.data) === JSON.stringify(first!.data)) next = await live.next();
      expect(next!.data).toEqual({ auditEvents: { totalCount: before + 1 } });
    } finally {
      live.close();
    }
  });
});
