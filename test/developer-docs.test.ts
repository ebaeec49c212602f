import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";

const CREATE = /* GraphQL */ `
  mutation Create($input: CreateDeveloperDocInput!) {
    createDeveloperDoc(input: $input) {
      id title slug content apiVersion isPublished publishedAt owner { id } partner { id }
    }
  }
`;
const UPDATE = /* GraphQL */ `
  mutation Update($id: ID!, $input: UpdateDeveloperDocInput!) {
    updateDeveloperDoc(id: $id, input: $input) { id title slug apiVersion content partner { id } }
  }
`;
const PUBLISH = /* GraphQL */ `mutation Publish($id: ID!) { publishDeveloperDoc(id: $id) { id isPublished publishedAt } }`;
const UNPUBLISH = /* GraphQL */ `mutation Unpublish($id: ID!) { unpublishDeveloperDoc(id: $id) { id isPublished publishedAt } }`;
const DELETE = /* GraphQL */ `mutation Delete($id: ID!) { deleteDeveloperDoc(id: $id) }`;
const DOCS = /* GraphQL */ `
  query Docs($apiVersion: String, $partnerId: ID, $includeDrafts: Boolean, $search: String, $first: Int, $after: String) {
    developerDocs(apiVersion: $apiVersion, partnerId: $partnerId, includeDrafts: $includeDrafts, search: $search, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id slug apiVersion } }
    }
  }
`;
const DOC = /* GraphQL */ `
  query Doc($apiVersion: String!, $slug: String!) { developerDoc(apiVersion: $apiVersion, slug: $slug) { id title content } }
`;

const NOW = new Date("2026-11-28T12:00:00.000Z");
let server: TestServer;
let world: World;
let support: string;
let admin: string;
beforeAll(async () => {
  server = await startTestServer({ now: () => NOW });
  world = await createWorld(server);
  support = world.users.support.token;
  admin = world.users.admin.token;
});
afterAll(async () => {
  await server?.close();
});

type Doc = { id: string; slug: string; apiVersion: string };
const slugs = (response: { data?: Record<string, any> | null }) =>
  (response.data!.developerDocs.edges as Array<{ node: Doc }>).map((edge) => `${edge.node.apiVersion}/${edge.node.slug}`);

async function create(input: Record<string, unknown>, token = support): Promise<string> {
  const response = await server.gql(CREATE, { input: { title: "A page", content: "Text", apiVersion: "v1", ...input } }, token);
  expect(response.errors).toBeUndefined();
  return response.data!.createDeveloperDoc.id;
}

describe("createDeveloperDoc", () => {
  it("creates a draft owned by its author, with the Markdown stored exactly as written", async () => {
    const content = "# Title\n\n  Indented `code` <b>html</b>\n\n- item\t\n\n```ts\nconst x = 1;\n```\n   ";
    const response = await server.gql(
      CREATE,
      { input: { title: "Authentication", slug: "authentication", content, apiVersion: "2026-11-01", partnerId: world.partnerA.globalId } },
      support,
    );
    expect(response.errors).toBeUndefined();
    expect(response.data!.createDeveloperDoc).toMatchObject({
      title: "Authentication",
      slug: "authentication",
      content,
      apiVersion: "2026-11-01",
      isPublished: false,
      publishedAt: null,
      owner: { id: world.users.support.globalId },
      partner: { id: world.partnerA.globalId },
    });
  });

  it.each([
    ["an upper-case slug", { slug: "Getting-Started" }, "slug"],
    ["a slug with a trailing dash", { slug: "getting-started-" }, "slug"],
    ["a slug with spaces", { slug: "getting started" }, "slug"],
    ["an oversized slug", { slug: "a".repeat(101) }, "slug"],
    ["an apiVersion with a leading zero", { slug: "ok", apiVersion: "v01" }, "apiVersion"],
    ["an upper-case apiVersion", { slug: "ok", apiVersion: "V1" }, "apiVersion"],
    ["an impossible date", { slug: "ok", apiVersion: "2026-02-30" }, "apiVersion"],
    ["a free-form apiVersion", { slug: "ok", apiVersion: "latest" }, "apiVersion"],
    ["an empty title", { slug: "ok", title: "   " }, "title"],
    ["an oversized title", { slug: "ok", title: "t".repeat(201) }, "title"],
    ["oversized content", { slug: "ok", content: "c".repeat(200_001) }, "content"],
  ])("refuses %s with BAD_USER_INPUT and stores nothing", async (_label, input, field) => {
    const before = await server.app.services.prisma.developerDoc.count();
    const response = await server.gql(CREATE, { input: { title: "T", content: "C", apiVersion: "v1", ...input } }, support);
    expect(errorCodes(response)).toEqual(["BAD_USER_INPUT"]);
    expect(response.errors![0]!.extensions!.issues).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: ["input", field] })]),
    );
    expect(await server.app.services.prisma.developerDoc.count()).toBe(before);
  });

  it("refuses a partner that does not exist", async () => {
    const missing = world.globalId("PartnerOrganization", "00000000-0000-7000-8000-000000000000");
    const response = await server.gql(CREATE, { input: { title: "T", slug: "orphan", content: "", apiVersion: "v1", partnerId: missing } }, admin);
    expect(errorCodes(response)).toEqual(["BAD_USER_INPUT"]);
  });

  it("keeps slugs unique per apiVersion: a clash is a CONFLICT, the same slug in another version is fine", async () => {
    await create({ slug: "rate-limits", apiVersion: "v3" });
    const clash = await server.gql(CREATE, { input: { title: "Again", slug: "rate-limits", content: "", apiVersion: "v3" } }, admin);
    expect(errorCodes(clash)).toEqual(["CONFLICT"]);
    await create({ slug: "rate-limits", apiVersion: "v4" });

    const other = await create({ slug: "quotas", apiVersion: "v3" });
    const renamed = await server.gql(UPDATE, { id: other, input: { slug: "rate-limits" } }, support);
    expect(errorCodes(renamed)).toEqual(["CONFLICT"]);
    const moved = await server.gql(UPDATE, { id: other, input: { apiVersion: "v4" } }, support);
    expect(errorCodes(moved)).toEqual([]);
    const clashByVersion = await server.gql(UPDATE, { id: other, input: { slug: "rate-limits" } }, support);
    expect(errorCodes(clashByVersion)).toEqual(["CONFLICT"]);
  });
});

describe("publishing and visibility", () => {
  it("publishes with the server's clock, shows public docs signed out, and unpublishing hides them again", async () => {
    const id = await create({ slug: "welcome", apiVersion: "v5", title: "Welcome" });
    const signedOut = () => server.gql(DOC, { apiVersion: "v5", slug: "welcome" });
    expect((await signedOut()).data).toEqual({ developerDoc: null });

    const published = await server.gql(PUBLISH, { id }, support);
    expect(published.data!.publishDeveloperDoc).toEqual({ id, isPublished: true, publishedAt: NOW.toISOString() });
    expect((await signedOut()).data!.developerDoc).toMatchObject({ id, title: "Welcome" });
    expect((await server.gql(`{ apiVersions }`)).data!.apiVersions).toContain("v5");
    // Publishing again changes nothing.
    expect((await server.gql(PUBLISH, { id }, admin)).data!.publishDeveloperDoc.publishedAt).toBe(NOW.toISOString());

    const unpublished = await server.gql(UNPUBLISH, { id }, support);
    expect(unpublished.data!.unpublishDeveloperDoc).toEqual({ id, isPublished: false, publishedAt: null });
    expect((await signedOut()).data).toEqual({ developerDoc: null });
    expect((await server.gql(`{ apiVersions }`)).data!.apiVersions).not.toContain("v5");
  });

  it("lists per viewer: public for everyone, a partner's for its members, drafts for staff who ask", async () => {
    const pub = await create({ slug: "vis-public", apiVersion: "v6" });
    const forA = await create({ slug: "vis-a", apiVersion: "v6", partnerId: world.partnerA.globalId });
    const forB = await create({ slug: "vis-b", apiVersion: "v6", partnerId: world.partnerB.globalId });
    await create({ slug: "vis-draft", apiVersion: "v6" });
    for (const id of [pub, forA, forB]) await server.gql(PUBLISH, { id }, support);

    const list = async (token: string | undefined, vars: Record<string, unknown> = {}) =>
      slugs(await server.gql(DOCS, { apiVersion: "v6", ...vars }, token));
    expect(await list(undefined)).toEqual(["v6/vis-public"]);
    expect(await list(world.users.noPartner.token)).toEqual(["v6/vis-public"]);
    expect(await list(world.users.developerA.token)).toEqual(["v6/vis-a", "v6/vis-public"]);
    expect(await list(world.users.developerA.token, { includeDrafts: true })).toEqual(["v6/vis-a", "v6/vis-public"]);
    expect(await list(world.users.partnerAdminB.token, { partnerId: world.partnerA.globalId })).toEqual([]);
    expect(await list(support)).toEqual(["v6/vis-a", "v6/vis-b", "v6/vis-public"]);
    expect(await list(support, { includeDrafts: true })).toEqual(["v6/vis-a", "v6/vis-b", "v6/vis-draft", "v6/vis-public"]);
    expect(await list(admin, { partnerId: world.partnerB.globalId })).toEqual(["v6/vis-b"]);

    const counted = await server.gql(DOCS, { apiVersion: "v6" }, world.users.developerB.token);
    expect(counted.data!.developerDocs.totalCount).toBe(2);
  });

  it("orders by apiVersion then slug, pages with first/after, and searches title and content ignoring case", async () => {
    for (const [slug, apiVersion, title, content] of [
      ["zz-last", "2026-01-15", "Webhooks", "Retries"],
      ["aa-first", "2026-01-15", "Errors", "The WEBHOOK signature"],
      ["mm-middle", "2025-12-01", "Pagination", "Cursors"],
    ] as const) {
      await server.gql(PUBLISH, { id: await create({ slug, apiVersion, title, content }) }, support);
    }
    const all: string[] = [];
    let after: string | null = null;
    do {
      const page: { data?: Record<string, any> | null } = await server.gql(DOCS, { first: 2, after, search: "" }, support);
      all.push(...slugs(page));
      after = page.data!.developerDocs.pageInfo.hasNextPage ? page.data!.developerDocs.pageInfo.endCursor : null;
    } while (after);
    expect(all.slice(0, 3)).toEqual(["2025-12-01/mm-middle", "2026-01-15/aa-first", "2026-01-15/zz-last"]);
    expect(all).toEqual([...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));

    const search = await server.gql(DOCS, { search: "webhook" });
    expect(slugs(search)).toEqual(["2026-01-15/aa-first", "2026-01-15/zz-last"]);
    expect(search.data!.developerDocs.totalCount).toBe(2);
  });

  it("lists a partner's docs through the partner with the same rules", async () => {
    const response = await server.gql(
      `query ($id: ID!) { partner(id: $id) { developerDocs(includeDrafts: true) { totalCount edges { node { slug } } } } }`,
      { id: world.partnerA.globalId },
      world.users.developerA.token,
    );
    const found = response.data!.partner.developerDocs.edges.map((edge: { node: { slug: string } }) => edge.node.slug);
    expect(found).toEqual(["vis-a"]);
    expect(response.data!.partner.developerDocs.totalCount).toBe(1);
  });
});

describe("who may edit", () => {
  it("lets support edit, publish and delete only their own docs; admin any", async () => {
    const adminDoc = await create({ slug: "admin-owned", apiVersion: "v9" }, admin);
    const supportDoc = await create({ slug: "support-owned", apiVersion: "v9" }, support);

    for (const [query, vars] of [
      [UPDATE, { id: adminDoc, input: { title: "Changed" } }],
      [PUBLISH, { id: adminDoc }],
      [UNPUBLISH, { id: adminDoc }],
      [DELETE, { id: adminDoc }],
    ] as const) {
      expect(errorCodes(await server.gql(query, vars, support))).toEqual(["FORBIDDEN"]);
    }
    const untouched = await server.app.services.prisma.developerDoc.findFirstOrThrow({ where: { slug: "admin-owned" } });
    expect(untouched).toMatchObject({ title: "A page", isPublished: false });

    const edited = await server.gql(UPDATE, { id: supportDoc, input: { title: "Changed", content: "New *text*" } }, support);
    expect(edited.data!.updateDeveloperDoc).toMatchObject({ title: "Changed", content: "New *text*", slug: "support-owned" });
    const byAdmin = await server.gql(UPDATE, { id: supportDoc, input: { partnerId: world.partnerB.globalId } }, admin);
    expect(byAdmin.data!.updateDeveloperDoc.partner).toEqual({ id: world.partnerB.globalId });
    const madePublic = await server.gql(UPDATE, { id: supportDoc, input: { partnerId: null } }, support);
    expect(madePublic.data!.updateDeveloperDoc.partner).toBeNull();

    expect((await server.gql(DELETE, { id: supportDoc }, support)).data).toEqual({ deleteDeveloperDoc: supportDoc });
    expect((await server.gql(DELETE, { id: adminDoc }, admin)).data).toEqual({ deleteDeveloperDoc: adminDoc });
    expect(await server.app.services.prisma.developerDoc.count({ where: { apiVersion: "v9" } })).toBe(0);
    expect(errorCodes(await server.gql(DELETE, { id: adminDoc }, admin))).toEqual(["NOT_FOUND"]);
  });

  it("refuses partner members and signed-out callers", async () => {
    const id = await create({ slug: "locked", apiVersion: "v9" });
    const input = { title: "T", slug: "mine", content: "", apiVersion: "v9" };
    expect(errorCodes(await server.gql(CREATE, { input }, world.users.partnerAdminA.token))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(CREATE, { input }))).toEqual(["UNAUTHENTICATED"]);
    expect(errorCodes(await server.gql(PUBLISH, { id }, world.users.developerA.token))).toEqual(["FORBIDDEN"]);
    expect(errorCodes(await server.gql(DELETE, { id }))).toEqual(["UNAUTHENTICATED"]);
    expect(await server.app.services.prisma.developerDoc.count({ where: { slug: "locked" } })).toBe(1);
  });
});
