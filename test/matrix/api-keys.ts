import { generateSecret, hashSecret } from "../../src/auth/api-key-secret.js";
import type { Actor, MatrixRow, World } from "../support/matrix.js";
import { ACTORS, deniedSilently, partnerAMembers, showsId, staff } from "../support/matrix.js";
import { errorCodes, type GraphQLResponse } from "../support/server.js";

const bMembers: readonly Actor[] = ["partnerAdminB", "developerB"];
const writersA: readonly Actor[] = ["admin", "partnerAdminA"];
const writersB: readonly Actor[] = ["admin", "partnerAdminB"];

interface SeededKey {
  id: string;
  globalId: string;
  secret: string;
}

let sequence = 0;

/** A key of partner A or B, inserted directly (with its event), so each actor gets a fresh one. */
async function seedKey(world: World, partner: "A" | "B", label: string): Promise<SeededKey> {
  const services = world.server.app.services;
  const partnerId = partner === "A" ? world.partnerA.id : world.partnerB.id;
  const { secret, tokenPrefix } = generateSecret("ppk", world.server.config.apiKeys.environment);
  const key = await services.prisma.apiKey.create({
    data: {
      keyName: `matrix-${label}-${++sequence}`,
      tokenPrefix,
      scopes: ["usage:read"],
      partnerId,
      createdById: world.users.admin.id,
      secretHash: hashSecret(world.server.app.secrets.apiKeyHashSecret, secret),
      events: { create: { action: "apiKeyCreated", actorUserId: world.users.admin.id, partnerId } },
    },
  });
  return { id: key.id, globalId: world.globalId("APIKey", key.id), secret };
}

/** One key per partner for the read rows, made once per world. */
const readKeys = new WeakMap<World, Promise<{ a: SeededKey; b: SeededKey }>>();
function keysFor(world: World) {
  let keys = readKeys.get(world);
  if (!keys) {
    keys = Promise.all([seedKey(world, "A", "read"), seedKey(world, "B", "read")]).then(([a, b]) => ({ a, b }));
    readKeys.set(world, keys);
  }
  return keys;
}
// `allowed` is synchronous; the read keys are looked up in `operation` and kept here.
const known = new WeakMap<World, { a: SeededKey; b: SeededKey }>();
async function readKeysOf(world: World) {
  const keys = await keysFor(world);
  known.set(world, keys);
  return keys;
}
const shows = (which: "a" | "b") => (response: GraphQLResponse, world: World) => {
  const keys = known.get(world);
  return !!keys && showsId(response, keys[which].globalId);
};

/** A denied read of a query gated by authScopes: FORBIDDEN, or UNAUTHENTICATED when signed out. */
const deniedWithError = (response: GraphQLResponse, _world: World, actor: Actor) => {
  const expected = actor === "signedOut" ? "UNAUTHENTICATED" : "FORBIDDEN";
  if (JSON.stringify(errorCodes(response)) !== JSON.stringify([expected])) {
    throw new Error(`expected ${expected}, got ${JSON.stringify(response)}`);
  }
};

const LIST = `query ($partnerId: ID) { apiKeys(partnerId: $partnerId, first: 100) { edges { node { id keyName } } } }`;
const VERIFY = `query ($secret: String!) { verifyApiKey(secret: $secret) { valid code } }`;

const rows: MatrixRow[] = [
  {
    field: "Query.apiKeys",
    case: "partner A's key is listed",
    allow: [...staff, ...partnerAMembers],
    operation: async (world) => (await readKeysOf(world), { query: LIST }),
    allowed: shows("a"),
    denied: deniedSilently,
  },
  {
    field: "Query.apiKeys",
    case: "partner B's key is listed when filtering by partner B",
    allow: [...staff, ...bMembers],
    operation: async (world) => (await readKeysOf(world), { query: LIST, variables: { partnerId: world.partnerB.globalId } }),
    allowed: shows("b"),
    denied: deniedSilently,
  },
  {
    field: "Query.apiKey",
    case: "partner A's key by id",
    allow: [...staff, ...partnerAMembers],
    operation: async (world) => ({
      query: `query ($id: ID!) { apiKey(id: $id) { id keyName tokenPrefix scopes partner { id } } }`,
      variables: { id: (await readKeysOf(world)).a.globalId },
    }),
    allowed: shows("a"),
    denied: deniedSilently,
  },
  {
    field: "Query.node",
    case: "partner B's API key",
    allow: [...staff, ...bMembers],
    operation: async (world) => ({
      query: `query ($id: ID!) { node(id: $id) { id ... on APIKey { keyName } } }`,
      variables: { id: (await readKeysOf(world)).b.globalId },
    }),
    allowed: shows("b"),
    denied: deniedSilently,
  },
  {
    field: "PartnerOrganization.apiKeys",
    case: "partner A's keys through the partner",
    allow: [...staff, ...partnerAMembers],
    operation: async (world) => (
      await readKeysOf(world),
      {
        query: `query ($id: ID!) { node(id: $id) { ... on PartnerOrganization { apiKeys(first: 100) { edges { node { id } } } } } }`,
        variables: { id: world.partnerA.globalId },
      }
    ),
    allowed: shows("a"),
    denied: deniedSilently,
  },
  {
    field: "APIKey.events",
    case: "partner A's key's history",
    allow: [...staff, "partnerAdminA"],
    operation: async (world) => ({
      query: `query ($id: ID!) { apiKey(id: $id) { events { edges { node { id action } } } } }`,
      variables: { id: (await readKeysOf(world)).a.globalId },
    }),
    allowed: (response) =>
      !response.errors?.length &&
      ((response.data as { apiKey: { events: { edges: unknown[] } | null } | null }).apiKey?.events?.edges.length ?? 0) > 0,
    denied: deniedSilently,
  },
  {
    field: "Query.verifyApiKey",
    case: "a signed-in user verifies partner A's key",
    allow: ["admin"],
    operation: async (world) => ({ query: VERIFY, variables: { secret: (await readKeysOf(world)).a.secret } }),
    allowed: (response) => (response.data as { verifyApiKey?: { code: string } } | null)?.verifyApiKey?.code === "VALID",
    denied: deniedWithError,
  },
  {
    field: "Query.verifyApiKey",
    case: "a service credential verifies (same token for every row actor)",
    allow: ACTORS,
    operation: async (world, actor) => {
      const { secret } = await world.server.app.services.serviceCredentials.issue({
        name: `matrix-gateway-${actor}-${++sequence}`,
        actorUserId: null,
      });
      return { query: VERIFY, variables: { secret: (await readKeysOf(world)).b.secret }, token: secret };
    },
    allowed: (response) => (response.data as { verifyApiKey?: { code: string } } | null)?.verifyApiKey?.code === "VALID",
  },
  {
    field: "Mutation.createApiKey",
    case: "a key for partner A",
    allow: writersA,
    operation: (world, actor) => ({
      query: `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }`,
      variables: { input: { partnerId: world.partnerA.globalId, keyName: `created-by-${actor}`, scopes: ["USAGE_READ"] } },
    }),
  },
  {
    field: "Mutation.createApiKey",
    case: "a key for partner B",
    allow: writersB,
    operation: (world, actor) => ({
      query: `mutation ($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id } } }`,
      variables: { input: { partnerId: world.partnerB.globalId, keyName: `created-by-${actor}`, scopes: ["DOCS_READ"] } },
    }),
  },
  {
    field: "Mutation.rotateApiKey",
    case: "partner A's key",
    allow: writersA,
    operation: async (world) => ({
      query: `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 60) { secret apiKey { id } } }`,
      variables: { id: (await seedKey(world, "A", "rotate")).globalId },
    }),
  },
  {
    field: "Mutation.rotateApiKey",
    case: "partner B's key",
    allow: writersB,
    operation: async (world) => ({
      query: `mutation ($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 0) { secret apiKey { id } } }`,
      variables: { id: (await seedKey(world, "B", "rotate")).globalId },
    }),
  },
  {
    field: "Mutation.revokeApiKey",
    case: "partner A's key",
    allow: writersA,
    operation: async (world) => ({
      query: `mutation ($id: ID!) { revokeApiKey(id: $id) { id isActive } }`,
      variables: { id: (await seedKey(world, "A", "revoke")).globalId },
    }),
  },
  {
    field: "Mutation.revokeApiKey",
    case: "partner B's key",
    allow: writersB,
    operation: async (world) => ({
      query: `mutation ($id: ID!) { revokeApiKey(id: $id) { id isActive } }`,
      variables: { id: (await seedKey(world, "B", "revoke")).globalId },
    }),
  },
  {
    field: "Query.serviceCredentials",
    case: "the gateway's credentials",
    allow: ["admin"],
    operation: async (world) => {
      await world.server.app.services.serviceCredentials.issue({
        name: `matrix-listed-${++sequence}`,
        actorUserId: null,
      });
      return { query: `{ serviceCredentials(first: 100) { edges { node { id name } } } }` };
    },
    denied: deniedWithError,
  },
  {
    field: "Mutation.createServiceCredential",
    case: "a new gateway credential",
    allow: ["admin"],
    operation: (_world, actor) => ({
      query: `mutation ($name: String!) { createServiceCredential(name: $name) { secret serviceCredential { id } } }`,
      variables: { name: `matrix-created-${actor}` },
    }),
  },
  {
    field: "Mutation.revokeServiceCredential",
    case: "a gateway credential",
    allow: ["admin"],
    operation: async (world, actor) => {
      const { id } = await world.server.app.services.serviceCredentials.issue({
        name: `matrix-revoked-${actor}-${++sequence}`,
        actorUserId: null,
      });
      return {
        query: `mutation ($id: ID!) { revokeServiceCredential(id: $id) { id isActive } }`,
        variables: { id: world.globalId("ServiceCredential", id) },
      };
    },
  },
];

export default rows;
