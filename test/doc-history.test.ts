import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorld, type Actor, type World } from "./support/matrix.js";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { sseStream } from "./support/streams.js";

const CREATE = /* GraphQL */ `
  mutation Create($input: CreateDeveloperDocInput!) { createDeveloperDoc(input: $input) { id } }
`;
const UPDATE = /* GraphQL */ `
  mutation Update($id: ID!, $input: UpdateDeveloperDocInput!) { updateDeveloperDoc(id: $id, input: $input) { id title } }
`;
const PUBLISH = /* GraphQL */ `
  mutation Publish($id: ID!, $note: String) { publishDeveloperDoc(id: $id, note: $note) { id isPublished } }
`;
const UNPUBLISH = /* GraphQL */ `mutation Unpublish($id: ID!) { unpublishDeveloperDoc(id: $id) { id } }`;
const REVISIONS = /* GraphQL */ `
  query Revisions($id: ID!) {
    node(id: $id) {
      ... on DeveloperDoc {
        revisions(first: 10) { totalCount edges { node { previousTitle previousContent changedAt editor { id username } } } }
      }
    }
  }
`;
const CHANGELOG = /* GraphQL */ `
  query Changelog($apiVersion: String, $partnerId: ID, $first: Int, $after: String) {
    changelog(apiVersion: $apiVersion, partnerId: $partnerId, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { title note apiVersion publishedAt doc { id title } partner { id } } }
    }
  }
`;

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

let sequence = 0;
async function createDoc(input: Record<string, unknown> = {}, actor: Actor = "support"): Promise<string> {
  const response = await ask(actor, CREATE, {
    input: { title: "Getting started", slug: `doc-${++sequence}`, content: "First text", apiVersion: "v1", ...input },
  });
  expect(response.errors).toBeUndefined();
  return response.data!.createDeveloperDoc.id;
}
type Revision = { previousTitle: string; previousContent: string; changedAt: string; editor: { id: string } | null };
const revisionsOf = async (id: string, actor: Actor = "admin") => {
  const response = await ask(actor, REVISIONS, { id });
  expect(response.errors).toBeUndefined();
  return response.data!.node?.revisions as { totalCount: number; edges: Array<{ node: Revision }> } | null;
};
type Entry = { title: string; note: string | null; apiVersion: string; doc: { id: string }; partner: { id: string } | null };
const changelog = async (actor: Actor, variables: Record<string, unknown> = {}) => {
  const response = await ask(actor, CHANGELOG, { first: 100, ...variables });
  expect(response.errors).toBeUndefined();
  return response.data!.changelog as { totalCount: number; edges: Array<{ node: Entry }> };
};

describe("revisions", () => {
  it("keeps the previous title and content of every change, with its editor, newest first", async () => {
    const id = await createDoc();
    await ask("support", UPDATE, { id, input: { content: "Second text" } });
    await ask("admin", UPDATE, { id, input: { title: "Start here", content: "Third text" } });
    // A change of neither title nor content (the slug) keeps no revision.
    await ask("support", UPDATE, { id, input: { slug: `moved-${sequence}` } });
    // Nor does writing the same text again.
    await ask("support", UPDATE, { id, input: { content: "Third text" } });
    const revisions = await revisionsOf(id);
    expect(revisions!.totalCount).toBe(2);
    expect(revisions!.edges.map((edge) => edge.node)).toEqual([
      expect.objectContaining({ previousTitle: "Getting started", previousContent: "Second text", editor: { id: world.users.admin.globalId, username: world.users.admin.username } }),
      expect.objectContaining({ previousTitle: "Getting started", previousContent: "First text", editor: { id: world.users.support.globalId, username: world.users.support.username } }),
    ]);
  });

  it("shows revisions to those who may edit the doc only: admin and the owning support member", async () => {
    const id = await createDoc();
    await ask("support", UPDATE, { id, input: { content: "Edited" } });
    await ask("support", PUBLISH, { id });
    expect((await revisionsOf(id, "admin"))!.totalCount).toBe(1);
    expect((await revisionsOf(id, "support"))!.totalCount).toBe(1);
    // Another support member may read the doc but not edit it, so sees no revisions.
    const other = await server.app.services.prisma.developerDoc.create({
      data: { title: "Admin's", slug: `admins-${++sequence}`, content: "x", apiVersion: "v1", ownerId: world.users.admin.id, isPublished: true },
    });
    const otherId = world.globalId("DeveloperDoc", other.id);
    await ask("admin", UPDATE, { id: otherId, input: { content: "y" } });
    expect(await revisionsOf(otherId, "support")).toBeNull();
    for (const actor of ["partnerAdminA", "developerA", "noPartner", "signedOut"] as const) {
      const response = await ask(actor, REVISIONS, { id });
      expect(response.errors).toBeUndefined();
      expect(response.data!.node).toEqual({ revisions: null });
      expect(JSON.stringify(response)).not.toContain("First text");
    }
  });
});

describe("publishing and the changelog", () => {
  it("records each publication with its note; republishing announces only new changes", async () => {
    const id = await createDoc({ apiVersion: "2026-01-15" });
    expect((await ask("support", PUBLISH, { id, note: "  First release  " })).errors).toBeUndefined();
    // Published again without a change: nothing new.
    await ask("support", PUBLISH, { id, note: "ignored" });
    await ask("support", UPDATE, { id, input: { title: "Getting started, revised" } });
    await ask("admin", PUBLISH, { id, note: "Renamed the guide" });
    const entries = await changelog("signedOut", { apiVersion: "2026-01-15" });
    expect(entries.totalCount).toBe(2);
    expect(entries.edges.map((edge) => [edge.node.title, edge.node.note])).toEqual([
      ["Getting started, revised", "Renamed the guide"],
      ["Getting started", "First release"],
    ]);
    expect(entries.edges[0]!.node).toMatchObject({ apiVersion: "2026-01-15", doc: { id }, partner: null });
  });

  it("lists a partner's changes for that partner's members and staff only, and drafts' for no one outside staff", async () => {
    const forA = await createDoc({ apiVersion: "v7", partnerId: world.partnerA.globalId, title: "A only" });
    const forB = await createDoc({ apiVersion: "v7", partnerId: world.partnerB.globalId, title: "B only" });
    // A draft has no entry at all, so even staff do not see it in the changelog.
    await createDoc({ apiVersion: "v7", title: "Still a draft" });
    await ask("support", PUBLISH, { id: forA, note: "for A" });
    await ask("support", PUBLISH, { id: forB, note: "for B" });
    const titles = async (actor: Actor, variables: Record<string, unknown> = {}) =>
      (await changelog(actor, { apiVersion: "v7", ...variables })).edges.map((edge) => edge.node.title).sort();
    expect(await titles("admin")).toEqual(["A only", "B only"]);
    expect(await titles("support")).toEqual(["A only", "B only"]);
    expect(await titles("developerA")).toEqual(["A only"]);
    expect(await titles("partnerAdminB")).toEqual(["B only"]);
    expect(await titles("noPartner")).toEqual([]);
    expect(await titles("signedOut")).toEqual([]);
    // Asking for partner B's changes by id reveals nothing, not even a count.
    const bAsked = await changelog("developerA", { apiVersion: "v7", partnerId: world.partnerB.globalId });
    expect(bAsked).toEqual({ totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
    // Unpublishing takes a doc's entries out of partners' view; staff keep them.
    await ask("support", UNPUBLISH, { id: forA });
    expect(await titles("developerA")).toEqual([]);
    expect(await titles("admin")).toEqual(["A only", "B only"]);
  });

  it("pages newest first with first/after", async () => {
    const ids = [await createDoc({ apiVersion: "v8" }), await createDoc({ apiVersion: "v8" }), await createDoc({ apiVersion: "v8" })];
    for (const [i, id] of ids.entries()) await ask("support", PUBLISH, { id, note: `n${i}` });
    const first = (await ask("developerA", CHANGELOG, { apiVersion: "v8", first: 2 })).data!.changelog;
    expect(first.totalCount).toBe(3);
    expect(first.edges.map((edge: { node: Entry }) => edge.node.note)).toEqual(["n2", "n1"]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const next = (await ask("developerA", CHANGELOG, { apiVersion: "v8", first: 2, after: first.pageInfo.endCursor })).data!.changelog;
    expect(next.edges.map((edge: { node: Entry }) => edge.node.note)).toEqual(["n0"]);
  });

  it("refuses a publish note that is too long, and publishing by anyone but the doc's editors", async () => {
    const id = await createDoc();
    expect(errorCodes(await ask("support", PUBLISH, { id, note: "x".repeat(2_001) }))).toEqual(["BAD_USER_INPUT"]);
    for (const actor of ["partnerAdminA", "developerA", "noPartner"] as const) {
      expect(errorCodes(await ask(actor, PUBLISH, { id, note: "mine" }))).toEqual(["FORBIDDEN"]);
    }
    expect(await server.app.services.prisma.docChangelogEntry.count({ where: { note: "mine" } })).toBe(0);
  });
});

describe("@live", () => {
  it("a changelog under @live shows a new publication without asking again, signed out", async () => {
    const id = await createDoc({ apiVersion: "v9" });
    const live = sseStream(server.url, `query @live { changelog(apiVersion: "v9") { totalCount edges { node { note } } } }`);
    try {
      expect((await live.next())!.data).toEqual({ changelog: { totalCount: 0, edges: [] } });
      await ask("support", PUBLISH, { id, note: "Live now" });
      // An invalidation from before the publication (the doc's creation, flushed at most once a
      // second) may re-send the old result first; the publication's result follows it.
      let next = await live.next();
      while (next && JSON.stringify(next.data) === JSON.stringify({ changelog: { totalCount: 0, edges: [] } })) next = await live.next();
      expect(next!.data).toEqual({ changelog: { totalCount: 1, edges: [{ node: { note: "Live now" } }] } });
    } finally {
      live.close();
    }
  });
});
