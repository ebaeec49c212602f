// Broken-object-level-authorization attempts: a member of partner A (or someone with no partner, or
// nobody) tries to reach partner B's records every way the API offers. Every attempt must answer as
// if B's records did not exist, and no response may carry any of their ids.
import { randomBytes } from "node:crypto";
import { getNamedType, isObjectType, type GraphQLObjectType } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildSchema } from "../src/schema/index.js";
import { createWorld, type Actor, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type GraphQLResponse, type TestServer } from "./support/server.js";

const schema = buildSchema();
const fieldsOf = (type: string) => {
  const named = schema.getType(type);
  return named && isObjectType(named) ? (named as GraphQLObjectType).getFields() : {};
};
/** user → partner → apiKeys → usageLogs exists once the API key and usage modules have landed. */
const hasKeyRelations = !!fieldsOf("PartnerOrganization").apiKeys && !!fieldsOf("APIKey").usageLogs;
const nodeTypes = new Set(
  Object.values(schema.getTypeMap())
    .filter((type) => isObjectType(type) && type.getInterfaces().some((iface) => iface.name === "Node"))
    .map((type) => type.name),
);

interface Records {
  /** Global ids, by the name used in the assertions. */
  a: Record<string, string>;
  b: Record<string, string>;
  /** Raw database ids of partner B's records: must not appear either. */
  bRaw: string[];
}

let server: TestServer;
let world: World;
let records: Records;
beforeAll(async () => {
  server = await startTestServer();
  world = await createWorld(server);
  records = await seedRecords(world);
});
afterAll(async () => {
  await server?.close();
});

async function seedRecords(world: World): Promise<Records> {
  const prisma = world.server.app.services.prisma;
  const forPartner = async (partner: "A" | "B") => {
    const partnerId = partner === "A" ? world.partnerA.id : world.partnerB.id;
    const creator = partner === "A" ? world.users.partnerAdminA.id : world.users.partnerAdminB.id;
    const doc = await prisma.developerDoc.create({
      data: {
        title: `Guide for ${partner}`,
        slug: `guide-${partner.toLowerCase()}`,
        apiVersion: partner === "A" ? "v1" : "v42",
        content: `Secret notes for ${partner}`,
        isPublished: true,
        ownerId: world.users.support.id,
        partnerId,
      },
    });
    const key = await prisma.apiKey.create({
      data: {
        keyName: `key-${partner}`,
        tokenPrefix: `ppk_${partner}`,
        scopes: [],
        partnerId,
        createdById: creator,
        secretHash: randomBytes(32).toString("hex"),
      },
    });
    const log = await prisma.usageLog.create({
      data: { partnerId, apiKeyId: key.id, endpoint: `/v1/${partner}`, method: "GET", statusCode: 200 },
    });
    return {
      raw: [doc.id, key.id, log.id],
      ids: {
        doc: world.globalId("DeveloperDoc", doc.id),
        key: world.globalId("APIKey", key.id),
        log: world.globalId("UsageLog", log.id),
      },
    };
  };
  const a = await forPartner("A");
  const b = await forPartner("B");
  return {
    a: { ...a.ids, partner: world.partnerA.globalId, developer: world.users.developerA.globalId },
    b: {
      ...b.ids,
      partner: world.partnerB.globalId,
      developer: world.users.developerB.globalId,
      partnerAdmin: world.users.partnerAdminB.globalId,
    },
    bRaw: [...b.raw, world.partnerB.id, world.users.developerB.id, world.users.partnerAdminB.id],
  };
}

const attackers: Actor[] = ["partnerAdminA", "developerA", "noPartner", "signedOut"];

async function ask(actor: Actor, query: string, variables: Record<string, unknown> = {}) {
  return server.gql(query, variables, world.token(actor));
}

/** Nothing of partner B's in the response, errors included. */
function expectNothingOfB(response: GraphQLResponse) {
  const text = JSON.stringify(response);
  for (const id of [...Object.values(records.b), ...records.bRaw]) expect(text).not.toContain(id);
  expect(text).not.toContain("Secret notes for B");
  expect(text).not.toContain("m-developerb@");
}

/** The node ids of partner B's records whose types the schema has (keys and usage may land later). */
const bNodeIds = () =>
  Object.entries(records.b)
    .filter(([name]) => (name === "key" ? nodeTypes.has("APIKey") : name === "log" ? nodeTypes.has("UsageLog") : true))
    .map(([, id]) => id);

describe("by node(id) and nodes(ids)", () => {
  it.each(attackers)("%s gets null for each of partner B's records", async (actor) => {
    for (const id of bNodeIds()) {
      const response = await ask(actor, `query ($id: ID!) { node(id: $id) { id __typename } }`, { id });
      expect(response.errors).toBeUndefined();
      expect(response.data).toEqual({ node: null });
    }
    const many = await ask(actor, `query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: bNodeIds() });
    expect(many.data!.nodes).toEqual(bNodeIds().map(() => null));
    expectNothingOfB(many);
  });
});

describe("by a filter argument", () => {
  it("partnerId: B on developerDocs answers an empty list with a zero count", async () => {
    for (const actor of attackers) {
      const response = await ask(
        actor,
        `query ($p: ID) { developerDocs(partnerId: $p) { totalCount edges { node { id } } } }`,
        { p: world.partnerB.globalId },
      );
      expect(response.data!.developerDocs).toEqual({ totalCount: 0, edges: [] });
    }
  });

  it("every root list with a partnerId argument leaves partner B's records out", async () => {
    const lists = Object.values(fieldsOf("Query")).filter((field) => {
      const type = getNamedType(field.type);
      const required = field.args.filter((arg) => arg.name !== "partnerId" && arg.type.toString().endsWith("!"));
      return field.args.some((arg) => arg.name === "partnerId") && isObjectType(type) && !!type.getFields().edges && !required.length;
    });
    expect(lists.map((field) => field.name)).toContain("developerDocs");
    for (const field of lists) {
      for (const actor of attackers) {
        const response = await ask(
          actor,
          `query ($p: ID) { list: ${field.name}(partnerId: $p) { edges { node { id } } } }`,
          { p: world.partnerB.globalId },
        );
        expectNothingOfB(response);
      }
    }
  });

  it("search and apiVersion filters do not reveal partner B's names or versions", async () => {
    for (const actor of attackers) {
      const partners = await ask(actor, `{ partners(search: "Partner B") { totalCount edges { node { id } } } }`);
      expect(partners.data!.partners).toEqual({ totalCount: 0, edges: [] });
      const docs = await ask(actor, `{ developerDocs(search: "Secret notes", apiVersion: "v42") { totalCount } }`);
      expect(docs.data!.developerDocs.totalCount).toBe(0);
      const versions = await ask(actor, `{ apiVersions }`);
      expect(versions.data!.apiVersions).not.toContain("v42");
      const one = await ask(actor, `{ developerDoc(apiVersion: "v42", slug: "guide-b") { id } }`);
      expect(one.data).toEqual({ developerDoc: null });
    }
  });
});

describe("through nested relations", () => {
  it("a user of partner B and their partner are out of reach", async () => {
    for (const actor of attackers) {
      const response = await ask(
        actor,
        `query ($id: ID!) { node(id: $id) { ... on User { email partner { id name members { edges { node { id email } } } } } } }`,
        { id: records.b.developer },
      );
      expect(response.data).toEqual({ node: null });
    }
  });

  it("docs lead to their partner only for that partner's members, and to their author only for staff", async () => {
    const response = await ask(
      "developerA",
      `{ developerDocs(first: 100) { edges { node { id owner { id } partner { id members { edges { node { id } } } } } } } }`,
    );
    expect(response.errors).toBeUndefined();
    const nodes = response.data!.developerDocs.edges.map((edge: { node: unknown }) => edge.node);
    expect(nodes).toEqual([
      { id: records.a.doc, owner: null, partner: { id: world.partnerA.globalId, members: expect.anything() } },
    ]);
    expectNothingOfB(response);
  });

  it.skipIf(!hasKeyRelations)("user → partner → apiKeys → usageLogs stays inside the viewer's partner", async () => {
    const nested = `partner { id apiKeys { edges { node { id usageLogs { edges { node { id } } } } } } }`;
    for (const actor of attackers) {
      const viaViewer = await ask(actor, `{ viewer { ${nested} } }`);
      expectNothingOfB(viaViewer);
      const viaNode = await ask(actor, `query ($id: ID!) { node(id: $id) { ... on User { ${nested} } } }`, {
        id: records.b.partnerAdmin,
      });
      expect(viaNode.data).toEqual({ node: null });
      const viaPartner = await ask(actor, `query ($id: ID!) { partner(id: $id) { apiKeys { edges { node { id } } } } }`, {
        id: world.partnerB.globalId,
      });
      expect(viaPartner.data).toEqual({ partner: null });
    }
    const own = await ask("developerA", `{ viewer { ${nested} } }`);
    expect(JSON.stringify(own)).toContain(records.a.key);
    expect(JSON.stringify(own)).toContain(records.a.log);
  });
});

describe("through aliases and fragments", () => {
  it("aliases asking for A's and B's records side by side get only A's", async () => {
    const response = await ask(
      "developerA",
      `query ($a: ID!, $b: ID!, $bDoc: ID!, $bUser: ID!) {
        mine: partner(id: $a) { ...P }
        theirs: partner(id: $b) { ...P }
        asNode: node(id: $b) { ...P }
        doc: node(id: $bDoc) { ... on DeveloperDoc { title content partner { ...P } } }
        user: node(id: $bUser) { ...U }
        all: nodes(ids: [$a, $b, $bDoc, $bUser]) { id ...P ...U ... on DeveloperDoc { content } }
      }
      fragment P on PartnerOrganization { id name status members { edges { node { ...U } } } }
      fragment U on User { id username email partner { id } }`,
      { a: world.partnerA.globalId, b: world.partnerB.globalId, bDoc: records.b.doc, bUser: records.b.developer },
    );
    expect(response.errors).toBeUndefined();
    expect(response.data).toMatchObject({ mine: { id: world.partnerA.globalId }, theirs: null, asNode: null, doc: null, user: null });
    expect(response.data!.all).toEqual([expect.objectContaining({ id: world.partnerA.globalId }), null, null, null]);
    expectNothingOfB(response);
  });
});

describe("by guessing ids", () => {
  const uuidLike = () => {
    const hex = randomBytes(16).toString("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  };

  it("random and neighbouring ids of every node type answer null", async () => {
    const bumped = (raw: string) => raw.slice(0, -1) + ((parseInt(raw.slice(-1), 16) + 1) % 16).toString(16);
    for (const typeName of nodeTypes) {
      const guesses = [uuidLike(), uuidLike(), bumped(world.partnerB.id), "1", "0"].map((raw) => world.globalId(typeName, raw));
      const response = await ask("developerA", `query ($ids: [ID!]!) { nodes(ids: $ids) { id } }`, { ids: guesses });
      expect(response.errors).toBeUndefined();
      expect(response.data!.nodes).toEqual(guesses.map(() => null));
    }
  });

  it("partner B's real ids under another type name answer null", async () => {
    for (const typeName of nodeTypes) {
      for (const raw of records.bRaw) {
        const response = await ask("partnerAdminA", `query ($id: ID!) { node(id: $id) { id } }`, {
          id: world.globalId(typeName, raw),
        });
        expect(response.data).toEqual({ node: null });
      }
    }
  });

  it("a malformed id is refused without revealing anything", async () => {
    const response = await ask("developerA", `{ node(id: "not-a-global-id") { id } }`);
    expect(response.data).toEqual({ node: null });
    expectNothingOfB(response);
  });
});

describe("writes to partner B's records", () => {
  it("are FORBIDDEN for partner A's partnerAdmin and change nothing", async () => {
    const rename = await ask("partnerAdminA", `mutation ($id: ID!) { updatePartner(id: $id, input: { name: "Owned" }) { id } }`, {
      id: world.partnerB.globalId,
    });
    expect(errorCodes(rename)).toEqual(["FORBIDDEN"]);
    const contact = await ask(
      "partnerAdminA",
      `mutation ($id: ID!, $c: ID!) { updatePartner(id: $id, input: { primaryContactId: $c }) { id } }`,
      { id: world.partnerB.globalId, c: world.users.partnerAdminA.globalId },
    );
    expect(errorCodes(contact)).toEqual(["FORBIDDEN"]);
    const doc = await ask("partnerAdminA", `mutation ($id: ID!) { deleteDeveloperDoc(id: $id) }`, { id: records.b.doc });
    expect(errorCodes(doc)).toEqual(["FORBIDDEN"]);
    const stored = await server.app.services.prisma.partnerOrganization.findUniqueOrThrow({ where: { id: world.partnerB.id } });
    expect(stored).toMatchObject({ name: "Partner B", primaryContactId: world.users.partnerAdminB.id });
    expect(await server.app.services.prisma.developerDoc.count({ where: { slug: "guide-b" } })).toBe(1);
  });

  it("key edits, disabling and enabling of partner B's key are FORBIDDEN for partner A's members and change nothing", async () => {
    const prisma = server.app.services.prisma;
    const before = await prisma.apiKey.findFirstOrThrow({ where: { partnerId: world.partnerB.id } });
    const id = world.globalId("APIKey", before.id);
    for (const actor of attackers) {
      for (const [query, variables] of [
        [`mutation ($id: ID!) { updateApiKey(id: $id, input: { keyName: "owned", scopes: [API_WRITE] }) { id } }`, { id }],
        [`mutation ($id: ID!) { updateApiKey(id: $id, input: { expiresAt: null }) { id keyName } }`, { id }],
        [`mutation ($id: ID!) { disableApiKey(id: $id) { id keyName } }`, { id }],
        [`mutation ($id: ID!) { enableApiKey(id: $id) { id keyName } }`, { id }],
      ] as const) {
        const response = await ask(actor, query, variables);
        expect(errorCodes(response)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
        expectNothingOfB(response);
      }
    }
    const after = await prisma.apiKey.findUniqueOrThrow({ where: { id: before.id } });
    expect(after).toEqual(before);
    expect(await prisma.auditEvent.count({ where: { apiKeyId: before.id } })).toBe(0);
  });

  it("publishing partner B's doc with a note is FORBIDDEN for partner A's members and writes no changelog entry", async () => {
    for (const actor of attackers) {
      const response = await ask(actor, `mutation ($id: ID!) { publishDeveloperDoc(id: $id, note: "owned") { id } }`, { id: records.b.doc });
      expect(errorCodes(response)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
      expectNothingOfB(response);
    }
    expect(await server.app.services.prisma.docChangelogEntry.count({ where: { note: "owned" } })).toBe(0);
  });
});

describe("partner B's history and audit trail", () => {
  it("stay out of reach through changelog, auditEvents and DeveloperDoc.revisions", async () => {
    const services = server.app.services;
    const bDocId = records.bRaw[0]!;
    await services.developerDocs.update(bDocId, { content: "Secret notes for B, revised" }, world.users.admin.id);
    await services.developerDocs.publish(bDocId, { actorUserId: world.users.admin.id, note: "B's change" });
    await services.partners.update(world.partnerB.id, { supportTier: "enterprise" }, world.users.admin.id);
    for (const actor of attackers) {
      const changelog = await ask(actor, `query ($p: ID) { changelog(partnerId: $p) { totalCount edges { node { title note doc { id } } } } }`, {
        p: world.partnerB.globalId,
      });
      expect(changelog.data!.changelog).toEqual({ totalCount: 0, edges: [] });
      const all = await ask(actor, `{ changelog(first: 100) { edges { node { note doc { id } partner { id } } } } }`);
      expectNothingOfB(all);
      expect(JSON.stringify(all)).not.toContain("B's change");
      const audit = await ask(actor, `query ($p: ID) { auditEvents(filter: { partnerId: $p }) { totalCount edges { node { id } } } }`, {
        p: world.partnerB.globalId,
      });
      if (actor === "partnerAdminA") expect(audit.data!.auditEvents).toEqual({ totalCount: 0, edges: [] });
      else expect(errorCodes(audit)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
      const revisions = await ask(actor, `query ($id: ID!) { node(id: $id) { ... on DeveloperDoc { revisions { totalCount } } } }`, {
        id: records.b.doc,
      });
      expect(revisions.data).toEqual({ node: null });
    }
    const own = await ask("partnerAdminA", `{ auditEvents(first: 100) { edges { node { detail partner { id } user { id } apiKey { id } } } } }`);
    expectNothingOfB(own);
  });

  it("invitations, password resets and partner creation cannot reach partner B's people", async () => {
    const prisma = server.app.services.prisma;
    const invite = await ask(
      "partnerAdminA",
      `mutation ($p: ID) { inviteUser(email: "spy@example.test", role: developer, partnerId: $p) { token } }`,
      { p: world.partnerB.globalId },
    );
    expect(errorCodes(invite)).toEqual(["FORBIDDEN"]);
    expect(await prisma.invitation.count({ where: { partnerId: world.partnerB.id } })).toBe(0);

    for (const actor of attackers) {
      const reset = await ask(actor, `mutation ($u: ID!) { createPasswordReset(userId: $u) { token } }`, {
        u: world.users.developerB.globalId,
      });
      expect(errorCodes(reset)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
      expectNothingOfB(reset);
      const annex = await ask(
        actor,
        `mutation ($u: ID!) { createPartner(input: { name: "Annex", primaryContact: { userId: $u } }) { partner { id } } }`,
        { u: world.users.partnerAdminB.globalId },
      );
      expect(errorCodes(annex)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
      const handover = await ask(
        actor,
        `mutation ($u: ID!, $r: ID) { setUserRole(userId: $u, role: developer, replacementContactId: $r) { id } }`,
        { u: world.users.partnerAdminB.globalId, r: world.users.partnerAdminA.globalId },
      );
      expect(errorCodes(handover)).toEqual([actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN"]);
    }
    expect(await prisma.passwordReset.count({ where: { userId: world.users.developerB.id } })).toBe(0);
    expect(await prisma.partnerOrganization.count({ where: { name: "Annex" } })).toBe(0);
    expect(await prisma.user.findUniqueOrThrow({ where: { id: world.users.partnerAdminB.id } })).toMatchObject({
      role: "partnerAdmin",
      partnerId: world.partnerB.id,
    });
  });

  it("the user directory neither lists nor counts partner B's people", async () => {
    for (const actor of attackers.filter((actor) => actor !== "signedOut")) {
      for (const search of ["m-developerb", "m-", "M-PARTNERADMINB@EXAMPLE"]) {
        const response = await ask(actor, `query ($s: String) { users(search: $s) { totalCount edges { node { id email } } } }`, {
          s: search,
        });
        expectNothingOfB(response);
        if (search !== "m-") expect(response.data!.users.totalCount).toBe(0);
      }
    }
  });
});
