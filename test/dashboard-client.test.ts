// The README's Apollo Client set-up (test/fixtures/dashboard/src/client.ts) against a real server:
// pages over HTTP merged by relayStylePagination, a `@live` query and a subscription over the
// WebSocket link.
import { gql, type TypedDocumentNode } from "@apollo/client";
import { filter, firstValueFrom, shareReplay } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createPortalClient } from "./fixtures/dashboard/src/client.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

// The operations of test/fixtures/dashboard/src/operations.ts, typed here by hand.
const PartnersPage: TypedDocumentNode<
  { partners: { edges: Array<{ node: { id: string; name: string; createdAt: string } }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } } },
  { first: number; after?: string | null }
> = gql`
  query PartnersPage($first: Int!, $after: String) {
    partners(first: $first, after: $after) {
      edges { node { id name status createdAt primaryContact { id email } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;
const LiveUsageTotals: TypedDocumentNode<{ usageSummary: { totalRequests: number; errorRequests: number; to: string } }, { partnerId?: string }> = gql`
  query LiveUsageTotals($partnerId: ID) @live {
    usageSummary(partnerId: $partnerId) { totalRequests errorRequests to }
  }
`;
const UsageFeed: TypedDocumentNode<{ usageLogCreated: { id: string; endpoint: string; statusCode: number } }, { partnerId?: string }> = gql`
  subscription UsageFeed($partnerId: ID) {
    usageLogCreated(partnerId: $partnerId) { id endpoint method statusCode requestCount occurredAt }
  }
`;

let server: TestServer;
let admin: SignedInUser;
let gateway: string;
let key: TestKey;
let partnerGlobalId: string;
const closers: Array<() => void> = [];

beforeAll(async () => {
  server = await startTestServer();
  admin = await createUser(server, "dashboard-admin", "admin");
  gateway = await createGatewayCredential(server);
  const partners = [];
  for (const name of ["Dash A", "Dash B", "Dash C"]) partners.push(await createPartner(server, name));
  key = await createKey(server, partners[0]!.id, partners[0]!.ownerId);
  partnerGlobalId = partners[0]!.globalId;
});
afterAll(async () => {
  for (const close of closers) close();
  await server?.close();
});

function dashboard() {
  const portal = createPortalClient({ url: server.url, token: admin.token, webSocketImpl: WebSocket });
  closers.push(portal.close);
  return portal.client;
}

const record = (endpoint: string) => server.gql(RECORD_USAGE, { events: [event(key, { endpoint })] }, gateway);

describe("the README's Apollo Client set-up", () => {
  it("pages partners over HTTP and merges the pages into one list", async () => {
    const client = dashboard();
    const partners = client.watchQuery({ query: PartnersPage, variables: { first: 2 } });
    const first = await firstValueFrom(partners.pipe(filter((result) => result.dataState === "complete")));
    expect(first.data.partners.edges.map((edge) => edge.node.name)).toEqual(["Dash A", "Dash B"]);
    expect(first.data.partners.pageInfo.hasNextPage).toBe(true);

    await partners.fetchMore({ variables: { after: first.data.partners.pageInfo.endCursor } });
    const merged = partners.getCurrentResult();
    expect(merged.dataState).toBe("complete");
    const edges = merged.dataState === "complete" ? merged.data.partners.edges : [];
    expect(edges.map((edge) => edge.node.name)).toEqual(["Dash A", "Dash B", "Dash C"]);
    // Relay global ids: the cache keeps each partner once, under its type and id.
    const a = edges[0]!.node;
    expect(client.cache.identify({ __typename: "PartnerOrganization", id: a.id })).toBe(`PartnerOrganization:${a.id}`);
    expect(a.id).toBe(partnerGlobalId);
    expect(Date.parse(a.createdAt)).not.toBeNaN();
  });

  it("keeps a @live query current over the WebSocket link", async () => {
    const client = dashboard();
    const totals = client.watchQuery({ query: LiveUsageTotals, variables: { partnerId: partnerGlobalId } });
    // Watched for the whole test, as a dashboard's view would: the live query stays open while
    // the watchQuery has a subscriber (with none, Apollo ends it and later reads hit the cache).
    const answers = totals.pipe(
      filter((result) => result.dataState === "complete"),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
    const watching = answers.subscribe();
    closers.push(() => watching.unsubscribe());
    const before = await firstValueFrom(answers);
    const start = before.data.usageSummary.totalRequests;
    // The live query's next answer, once the recorded request is counted.
    const updated = firstValueFrom(answers.pipe(filter((result) => result.data.usageSummary.totalRequests > start)));
    expect((await record("/v1/live")).errors).toBeUndefined();
    expect((await updated).data.usageSummary.totalRequests).toBe(start + 1);
  });

  it("receives usage events through a subscription over the WebSocket link", async () => {
    const client = dashboard();
    const feed = client.subscribe({ query: UsageFeed, variables: { partnerId: partnerGlobalId } });
    const arrived = firstValueFrom(feed.pipe(filter((result) => result.data?.usageLogCreated.endpoint === "/v1/feed")));
    let received = false;
    void arrived.then(() => (received = true));
    // The subscription starts asynchronously: record until an event arrives.
    for (let attempt = 0; attempt < 200 && !received; attempt++) {
      expect((await record("/v1/feed")).errors).toBeUndefined();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await arrived).data?.usageLogCreated).toMatchObject({ endpoint: "/v1/feed", statusCode: 200 });
  });
});
