import { generateSecret, hashSecret } from "../../src/auth/api-key-secret.js";
import type { Actor, MatrixRow, World } from "../support/matrix.js";
import { ACTORS, partnerAMembers, showsId, staff } from "../support/matrix.js";
import { errorCodes, type GraphQLResponse } from "../support/server.js";

// Key editing, doc history (revisions, changelog) and the audit log.

const writersA: readonly Actor[] = ["admin", "partnerAdminA"];
const writersB: readonly Actor[] = ["admin", "partnerAdminB"];

let sequence = 0;

/** A fresh key of partner A or B with two scopes, enabled or disabled. */
async function seedKey(world: World, partner: "A" | "B", isActive = true) {
  const { secret, tokenPrefix } = generateSecret("ppk", world.server.config.apiKeys.environment);
  const key = await world.server.app.services.prisma.apiKey.create({
    data: {
      keyName: `matrix-edit-${++sequence}`,
      tokenPrefix,
      scopes: ["usage:read", "usage:write"],
      isActive,
      partnerId: partner === "A" ? world.partnerA.id : world.partnerB.id,
      createdById: world.users.admin.id,
      secretHash: hashSecret(world.server.app.secrets.apiKeyHashSecret, secret),
    },
  });
  return world.globalId("APIKey", key.id);
}

interface HistoryFixtures {
  /** Global ids of docs with changelog entries. */
  publicDoc: string;
  partnerADoc: string;
  /** Docs with a revision, owned by support and by admin. */
  supportsDoc: string;
  adminsDoc: string;
  /** Global ids of audit events naming partner A and partner B. */
  eventA: string;
  eventB: string;
}

const fixtures = new WeakMap<World, Promise<HistoryFixtures>>();
const known = new WeakMap<World, HistoryFixtures>();
async function historyOf(world: World): Promise<HistoryFixtures> {
  let pending = fixtures.get(world);
  if (!pending) {
    pending = createFixtures(world);
    fixtures.set(world, pending);
  }
  const value = await pending;
  known.set(world, value);
  return value;
}

async function createFixtures(world: World): Promise<HistoryFixtures> {
  const { developerDocs, partners } = world.server.app.services;
  const doc = async (slug: string, owner: "admin" | "support", partnerId: string | null, publish: boolean) => {
    const { id } = await developerDocs.create({
      title: `History ${slug}`,
      slug,
      content: "Before",
      apiVersion: "v555",
      partnerId,
      ownerId: world.users[owner].id,
    });
    await developerDocs.update(id, { content: "After" }, world.users[owner].id);
    if (publish) await developerDocs.publish(id, { actorUserId: world.users[owner].id, note: `published ${slug}` });
    return { id, globalId: world.globalId("DeveloperDoc", id) };
  };
  const publicDoc = await doc("history-public", "support", null, true);
  const partnerADoc = await doc("history-partner-a", "support", world.partnerA.id, true);
  const adminsDoc = await doc("history-admins", "admin", null, false);
  await partners.update(world.partnerA.id, { supportTier: "premium" }, world.users.admin.id);
  await partners.update(world.partnerB.id, { supportTier: "enterprise" }, world.users.admin.id);
  const prisma = world.server.app.services.prisma;
  const latest = (partnerId: string) =>
    prisma.auditEvent.findFirstOrThrow({ where: { partnerId, action: "partnerUpdated" }, orderBy: { createdAt: "desc" } });
  return {
    publicDoc: publicDoc.globalId,
    partnerADoc: partnerADoc.globalId,
    supportsDoc: publicDoc.globalId,
    adminsDoc: adminsDoc.globalId,
    eventA: world.globalId("AuditEvent", (await latest(world.partnerA.id)).id),
    eventB: world.globalId("AuditEvent", (await latest(world.partnerB.id)).id),
  };
}

const shows = (pick: (fixtures: HistoryFixtures) => string) => (response: GraphQLResponse, world: World) => {
  const value = known.get(world);
  return !!value && showsId(response, pick(value));
};

/** A denied list answers without the record: no errors, or FORBIDDEN (UNAUTHENTICATED signed out) when the field refuses the caller. */
const leftOutOrRefused = (response: GraphQLResponse, _world: World, actor: Actor) => {
  if (!response.errors?.length) return;
  const expected = actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN";
  if (JSON.stringify(errorCodes(response)) !== JSON.stringify([expected])) throw new Error(`expected ${expected}: ${JSON.stringify(response)}`);
};
const noErrors = (response: GraphQLResponse) => {
  if (response.errors?.length) throw new Error(`a denied read answered errors: ${JSON.stringify(response.errors)}`);
};

const UPDATE = `mutation ($id: ID!, $input: UpdateApiKeyInput!) { updateApiKey(id: $id, input: $input) { id scopes } }`;
const CHANGELOG = `query ($partnerId: ID) { changelog(apiVersion: "v555", partnerId: $partnerId, first: 100) { totalCount edges { node { title doc { id } } } } }`;
const REVISIONS = `query ($id: ID!) { node(id: $id) { ... on DeveloperDoc { revisions { totalCount edges { node { previousContent } } } } } }`;
const AUDIT = `query ($partnerId: ID) { auditEvents(filter: { partnerId: $partnerId }, first: 100) { totalCount edges { node { id action } } } }`;

const keyRows = (partner: "A" | "B", allow: readonly Actor[]): MatrixRow[] => [
  {
    field: "Mutation.updateApiKey",
    case: `partner ${partner}'s key, narrowing its scopes`,
    allow,
    operation: async (world) => ({ query: UPDATE, variables: { id: await seedKey(world, partner), input: { scopes: ["USAGE_READ"] } } }),
  },
  {
    field: "Mutation.disableApiKey",
    case: `partner ${partner}'s key`,
    allow,
    operation: async (world) => ({
      query: `mutation ($id: ID!) { disableApiKey(id: $id) { id isActive } }`,
      variables: { id: await seedKey(world, partner) },
    }),
  },
  {
    field: "Mutation.enableApiKey",
    case: `partner ${partner}'s disabled key`,
    allow,
    operation: async (world) => ({
      query: `mutation ($id: ID!) { enableApiKey(id: $id) { id isActive } }`,
      variables: { id: await seedKey(world, partner, false) },
    }),
  },
];

const rows: MatrixRow[] = [
  ...keyRows("A", writersA),
  ...keyRows("B", writersB),
  {
    field: "Mutation.updateApiKey",
    case: "partner A's key, adding a scope",
    allow: ["admin"],
    operation: async (world) => ({
      query: UPDATE,
      variables: { id: await seedKey(world, "A"), input: { scopes: ["USAGE_READ", "USAGE_WRITE", "API_WRITE"] } },
    }),
  },
  {
    field: "Query.changelog",
    case: "a public doc's publication",
    allow: ACTORS,
    operation: async (world) => (await historyOf(world), { query: CHANGELOG }),
    allowed: shows((f) => f.publicDoc),
    denied: noErrors,
  },
  {
    field: "Query.changelog",
    case: "partner A's doc's publication",
    allow: [...staff, ...partnerAMembers],
    operation: async (world) => (await historyOf(world), { query: CHANGELOG, variables: { partnerId: world.partnerA.globalId } }),
    allowed: shows((f) => f.partnerADoc),
    denied: noErrors,
  },
  {
    field: "DeveloperDoc.revisions",
    case: "a doc owned by support",
    allow: staff,
    operation: async (world) => ({ query: REVISIONS, variables: { id: (await historyOf(world)).supportsDoc } }),
    allowed: (response) => JSON.stringify(response.data ?? null).includes('"previousContent":"Before"'),
    denied: noErrors,
  },
  {
    field: "DeveloperDoc.revisions",
    case: "a draft owned by admin",
    allow: ["admin"],
    operation: async (world) => ({ query: REVISIONS, variables: { id: (await historyOf(world)).adminsDoc } }),
    allowed: (response) => JSON.stringify(response.data ?? null).includes('"previousContent":"Before"'),
    denied: noErrors,
  },
  {
    field: "Query.auditEvents",
    case: "an event naming partner A",
    allow: [...staff, "partnerAdminA"],
    operation: async (world) => (await historyOf(world), { query: AUDIT }),
    allowed: shows((f) => f.eventA),
    denied: leftOutOrRefused,
  },
  {
    field: "Query.auditEvents",
    case: "an event naming partner B, asked for by partner",
    allow: [...staff, "partnerAdminB"],
    operation: async (world) => (await historyOf(world), { query: AUDIT, variables: { partnerId: world.partnerB.globalId } }),
    allowed: shows((f) => f.eventB),
    denied: leftOutOrRefused,
  },
  {
    field: "Query.node",
    case: "an audit event naming partner B",
    allow: [...staff, "partnerAdminB"],
    operation: async (world) => ({ query: `query ($id: ID!) { node(id: $id) { id } }`, variables: { id: (await historyOf(world)).eventB } }),
    allowed: shows((f) => f.eventB),
    denied: noErrors,
  },
];

export default rows;
