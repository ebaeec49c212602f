import { randomBytes } from "node:crypto";
import type { MatrixOperation, MatrixRow, World } from "../support/matrix.js";
import { ACTORS, deniedSilently, partnerAMembers, showsId, staff } from "../support/matrix.js";

export interface DocFixtures {
  /** Global ids. */
  publicDoc: string;
  partnerADoc: string;
  partnerBDoc: string;
  draft: string;
  partnerADraft: string;
}

const fixtures = new WeakMap<World, Promise<DocFixtures>>();

/** The docs every read row asks about, created once per world. */
export function docFixtures(world: World): Promise<DocFixtures> {
  let pending = fixtures.get(world);
  if (!pending) {
    pending = createDocFixtures(world);
    fixtures.set(world, pending);
  }
  return pending;
}

async function createDocFixtures(world: World): Promise<DocFixtures> {
  const prisma = world.server.app.services.prisma;
  const doc = async (slug: string, apiVersion: string, isPublished: boolean, partnerId: string | null) => {
    const created = await prisma.developerDoc.create({
      data: {
        title: `Matrix ${slug}`,
        slug,
        apiVersion,
        content: `# ${slug}\n`,
        isPublished,
        publishedAt: isPublished ? new Date() : null,
        ownerId: world.users.support.id,
        partnerId,
      },
    });
    return world.globalId("DeveloperDoc", created.id);
  };
  // Versions whose only docs are partner A's, or a draft: apiVersions lists them only as the docs are.
  await doc("matrix-a-only", "v77", true, world.partnerA.id);
  await doc("matrix-draft-only", "v88", false, null);
  return {
    publicDoc: await doc("matrix-public", "v1", true, null),
    partnerADoc: await doc("matrix-partner-a", "v1", true, world.partnerA.id),
    partnerBDoc: await doc("matrix-partner-b", "v1", true, world.partnerB.id),
    draft: await doc("matrix-draft", "v1", false, null),
    partnerADraft: await doc("matrix-partner-a-draft", "v1", false, world.partnerA.id),
  };
}

/** A fresh doc for one write, owned by the given actor. */
async function freshDoc(world: World, owner: "admin" | "support", isPublished = false) {
  const created = await world.server.app.services.prisma.developerDoc.create({
    data: {
      title: "Fresh",
      slug: `fresh-${randomBytes(5).toString("hex")}`,
      apiVersion: "2026-11-01",
      content: "Fresh *markdown*",
      isPublished,
      publishedAt: isPublished ? new Date() : null,
      ownerId: world.users[owner].id,
    },
  });
  return world.globalId("DeveloperDoc", created.id);
}

const LIST = `query ($partnerId: ID, $drafts: Boolean) {
  developerDocs(partnerId: $partnerId, includeDrafts: $drafts, first: 100) { edges { node { id } } }
}`;
const ONE = `query ($v: String!, $slug: String!) { developerDoc(apiVersion: $v, slug: $slug) { id title } }`;

// `allowed` is synchronous, so read rows resolve the fixtures in `operation` first and keep them here.
const fixtureCache = new WeakMap<World, DocFixtures>();
const withFixtures =
  (build: (world: World, docs: DocFixtures) => MatrixOperation) =>
  async (world: World): Promise<MatrixOperation> => {
    const docs = await docFixtures(world);
    fixtureCache.set(world, docs);
    return build(world, docs);
  };

const listRow = (
  docCase: string,
  allow: MatrixRow["allow"],
  pick: (docs: DocFixtures) => string,
  variables: (world: World) => Record<string, unknown> = () => ({}),
): MatrixRow => ({
  field: "Query.developerDocs",
  case: docCase,
  allow,
  operation: withFixtures((world) => ({ query: LIST, variables: variables(world) })),
  allowed: (response, world) => {
    const docs = fixtureCache.get(world);
    return !!docs && showsId(response, pick(docs));
  },
  denied: deniedSilently,
});

const writeRows = (
  field: string,
  query: string,
  allowed?: MatrixRow["allowed"],
  published = false,
): MatrixRow[] => [
  {
    field,
    case: "a doc support owns",
    allow: staff,
    operation: async (world) => ({ query, variables: { id: await freshDoc(world, "support", published) } }),
    allowed,
  },
  {
    field,
    case: "a doc admin owns (support may not touch it)",
    allow: ["admin"],
    operation: async (world) => ({ query, variables: { id: await freshDoc(world, "admin", published) } }),
    allowed,
  },
];

const rows: MatrixRow[] = [
  listRow("a published doc without a partner (public)", ACTORS, (docs) => docs.publicDoc),
  listRow("partner A's published doc", [...staff, ...partnerAMembers], (docs) => docs.partnerADoc),
  listRow(
    "partner B's published doc, filtered by partnerId: B",
    [...staff, "partnerAdminB", "developerB"],
    (docs) => docs.partnerBDoc,
    (world) => ({ partnerId: world.partnerB.globalId }),
  ),
  listRow("a draft, asking includeDrafts", staff, (docs) => docs.draft, () => ({ drafts: true })),
  listRow("partner A's draft, asking includeDrafts and partnerId: A", staff, (docs) => docs.partnerADraft, (world) => ({
    drafts: true,
    partnerId: world.partnerA.globalId,
  })),
  {
    field: "Query.developerDoc",
    case: "a published doc without a partner (public)",
    allow: ACTORS,
    operation: withFixtures(() => ({ query: ONE, variables: { v: "v1", slug: "matrix-public" } })),
    denied: deniedSilently,
  },
  {
    field: "Query.developerDoc",
    case: "partner A's published doc",
    allow: [...staff, ...partnerAMembers],
    operation: withFixtures(() => ({ query: ONE, variables: { v: "v1", slug: "matrix-partner-a" } })),
    denied: deniedSilently,
  },
  {
    field: "Query.developerDoc",
    case: "a draft",
    allow: staff,
    operation: withFixtures(() => ({ query: ONE, variables: { v: "v1", slug: "matrix-draft" } })),
    denied: deniedSilently,
  },
  {
    field: "Query.apiVersions",
    case: "a version with a public doc",
    allow: ACTORS,
    operation: withFixtures(() => ({ query: `{ apiVersions }` })),
    allowed: (response) => !response.errors && (response.data as { apiVersions: string[] }).apiVersions.includes("v1"),
    denied: deniedSilently,
  },
  {
    field: "Query.apiVersions",
    case: "a version whose only published doc is partner A's",
    allow: [...staff, ...partnerAMembers],
    operation: withFixtures(() => ({ query: `{ apiVersions }` })),
    allowed: (response) => !response.errors && (response.data as { apiVersions: string[] }).apiVersions.includes("v77"),
    denied: deniedSilently,
  },
  {
    field: "Query.apiVersions",
    case: "a version whose only doc is a draft (listed for nobody)",
    allow: [],
    operation: withFixtures(() => ({ query: `{ apiVersions }` })),
    allowed: (response) => !response.errors && (response.data as { apiVersions: string[] }).apiVersions.includes("v88"),
    denied: deniedSilently,
  },
  {
    field: "DeveloperDoc.owner",
    case: "the author of a public doc",
    allow: staff,
    operation: withFixtures(() => ({
      query: `query ($v: String!, $slug: String!) { developerDoc(apiVersion: $v, slug: $slug) { owner { id } } }`,
      variables: { v: "v1", slug: "matrix-public" },
    })),
    allowed: (response, world) => showsId(response, world.users.support.globalId),
    denied: deniedSilently,
  },
  {
    field: "DeveloperDoc.partner",
    case: "the partner of partner A's doc",
    allow: [...staff, ...partnerAMembers],
    operation: withFixtures((_world, docs) => ({
      query: `query ($id: ID!) { node(id: $id) { ... on DeveloperDoc { partner { id } } } }`,
      variables: { id: docs.partnerADoc },
    })),
    allowed: (response, world) => showsId(response, world.partnerA.globalId),
    denied: deniedSilently,
  },
  {
    field: "PartnerOrganization.developerDocs",
    case: "partner A's published doc through the partner",
    allow: [...staff, ...partnerAMembers],
    operation: withFixtures((world) => ({
      query: `query ($id: ID!) { partner(id: $id) { developerDocs { totalCount edges { node { id } } } } }`,
      variables: { id: world.partnerA.globalId },
    })),
    allowed: (response, world) => {
      const docs = fixtureCache.get(world);
      return !!docs && showsId(response, docs.partnerADoc) && !showsId(response, docs.partnerADraft);
    },
    denied: deniedSilently,
  },
  {
    field: "Mutation.createDeveloperDoc",
    case: "a new draft",
    allow: staff,
    operation: (_world, actor) => ({
      query: `mutation ($input: CreateDeveloperDocInput!) { createDeveloperDoc(input: $input) { id isPublished } }`,
      variables: {
        input: { title: "New", slug: `new-by-${actor.toLowerCase()}`, content: "# New\n", apiVersion: "v2" },
      },
    }),
  },
  ...writeRows(
    "Mutation.updateDeveloperDoc",
    `mutation ($id: ID!) { updateDeveloperDoc(id: $id, input: { title: "Edited" }) { id title } }`,
  ),
  ...writeRows("Mutation.publishDeveloperDoc", `mutation ($id: ID!) { publishDeveloperDoc(id: $id) { id isPublished } }`, (response) =>
    !response.errors && (response.data as { publishDeveloperDoc?: { isPublished: boolean } }).publishDeveloperDoc?.isPublished === true,
  ),
  ...writeRows(
    "Mutation.unpublishDeveloperDoc",
    `mutation ($id: ID!) { unpublishDeveloperDoc(id: $id) { id isPublished } }`,
    (response) =>
      !response.errors &&
      (response.data as { unpublishDeveloperDoc?: { isPublished: boolean } }).unpublishDeveloperDoc?.isPublished === false,
    true,
  ),
  ...writeRows("Mutation.deleteDeveloperDoc", `mutation ($id: ID!) { deleteDeveloperDoc(id: $id) }`),
];

export default rows;
