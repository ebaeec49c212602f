import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCodes, startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

const NOW = new Date("2026-11-28T12:00:00.000Z");
let server: TestServer;
let gateway: string;
let support: SignedInUser;
let developerA: SignedInUser;
let partnerA: Awaited<ReturnType<typeof createPartner>>;
let partnerB: Awaited<ReturnType<typeof createPartner>>;
let keyA1: TestKey;
let keyA2: TestKey;
let keyB: TestKey;

beforeAll(async () => {
  server = await startTestServer({ now: () => NOW });
  gateway = await createGatewayCredential(server);
  partnerA = await createPartner(server, "Review A");
  partnerB = await createPartner(server, "Review B");
  keyA1 = await createKey(server, partnerA.id, partnerA.ownerId);
  keyA2 = await createKey(server, partnerA.id, partnerA.ownerId);
  keyB = await createKey(server, partnerB.id, partnerB.ownerId);
  support = await createUser(server, "review-support", "support");
  developerA = await createUser(server, "review-dev-a", "developer", partnerA.id);
});
afterAll(async () => {
  await server?.close();
});

async function record(events: Array<Record<string, unknown>>) {
  const response = await server.gql(RECORD_USAGE, { events }, gateway);
  expect(response.data?.recordUsage.rejected, JSON.stringify(response)).toEqual([]);
}

const LOGS = /* GraphQL */ `
  query Logs($filter: UsageLogFilter, $first: Int, $after: String) {
    usageLogs(filter: $filter, first: $first, after: $after) {
      edges { cursor node { id endpoint method statusCode requestCount occurredAt partner { id name } apiKey { id } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

type Page = {
  usageLogs: {
    edges: Array<{ node: { endpoint: string; occurredAt: string; statusCode: number; partner: { id: string }; apiKey: { id: string } } }>;
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
};

describe("usageLogs", () => {
  it("pages newest first by keyset, unshifted by rows inserted between pages", async () => {
    const minute = (m: number) => new Date(Date.UTC(2026, 10, 27, 10, m)).toISOString();
    // Five events of partner A, two of them at the same instant (the id breaks the tie).
    await record([0, 1, 2, 2, 3].map((m, i) => event(keyA1, { endpoint: `/page/${i}`, occurredAt: minute(m) })));
    const filter = { endpoint: undefined, from: minute(0), to: minute(59) };
    const first = await server.gql<Page>(LOGS, { filter, first: 2 }, support.token);
    expect(first.errors).toBeUndefined();
    const firstPage = first.data!.usageLogs.edges.map((e) => e.node.endpoint);
    expect(firstPage).toEqual(["/page/4", expect.stringMatching(/^\/page\/[23]$/)]);

    // New rows, newer and older than the cursor, arrive between pages.
    await record([event(keyA1, { endpoint: "/page/new", occurredAt: minute(30) })]);
    const second = await server.gql<Page>(LOGS, { filter, first: 2, after: first.data!.usageLogs.pageInfo.endCursor }, support.token);
    const third = await server.gql<Page>(LOGS, { filter, first: 2, after: second.data!.usageLogs.pageInfo.endCursor }, support.token);
    const seen = [...firstPage, ...second.data!.usageLogs.edges.map((e) => e.node.endpoint), ...third.data!.usageLogs.edges.map((e) => e.node.endpoint)];
    expect(seen.slice(0, 4).sort()).toEqual(["/page/1", "/page/2", "/page/3", "/page/4"]);
    expect(seen.slice(4)).toEqual(["/page/0"]);
    expect(third.data!.usageLogs.pageInfo.hasNextPage).toBe(false);
    expect(second.data!.usageLogs.pageInfo.hasNextPage).toBe(true);
  });

  it("filters, and shows a partner's members only their own partner's logs", async () => {
    await record([
      event(keyA2, { endpoint: "/filter/a", statusCode: 404, occurredAt: "2026-11-28T09:00:00.000Z" }),
      event(keyB, { endpoint: "/filter/b", statusCode: 500, occurredAt: "2026-11-28T09:00:00.000Z" }),
    ]);
    const byClass = await server.gql<Page>(LOGS, { filter: { statusClass: "4xx" } }, support.token);
    expect(byClass.data!.usageLogs.edges.map((e) => e.node.endpoint)).toEqual(["/filter/a"]);
    const byKey = await server.gql<Page>(LOGS, { filter: { apiKeyId: keyA2.globalId } }, support.token);
    expect(byKey.data!.usageLogs.edges.map((e) => e.node.apiKey.id)).toEqual([keyA2.globalId]);
    const staffSees = await server.gql<Page>(LOGS, { filter: { statusClass: "5xx" } }, support.token);
    expect(staffSees.data!.usageLogs.edges.map((e) => e.node.endpoint)).toEqual(["/filter/b"]);
    const memberSees = await server.gql<Page>(LOGS, { filter: { statusClass: "5xx" } }, developerA.token);
    expect(memberSees.data!.usageLogs.edges).toEqual([]);
    const memberAsksB = await server.gql<Page>(LOGS, { filter: { partnerId: partnerB.globalId } }, developerA.token);
    expect(memberAsksB.data!.usageLogs.edges).toEqual([]);
    const own = await server.gql<Page>(LOGS, { first: 100 }, developerA.token);
    expect(new Set(own.data!.usageLogs.edges.map((e) => e.node.partner.id))).toEqual(new Set([partnerA.globalId]));
    expect(errorCodes(await server.gql(LOGS, {}))).toEqual(["UNAUTHENTICATED"]);
    expect(errorCodes(await server.gql(LOGS, { filter: { statusClass: "6xx" } }, support.token))).toEqual(["BAD_USER_INPUT"]);
    expect(errorCodes(await server.gql(LOGS, { after: "bm90LWEtY3Vyc29y" }, support.token))).toEqual(["BAD_USER_INPUT"]);
  });

  it("is reachable from a key and from a partner", async () => {
    const response = await server.gql(
      /* GraphQL */ `
        query ($id: ID!, $key: ID!) {
          partner: node(id: $id) { ... on PartnerOrganization { usageLogs(first: 1) { edges { node { partner { id } } } } } }
          key: node(id: $key) { ... on APIKey { usageLogs(first: 5) { edges { node { apiKey { id } } } } } }
        }
      `,
      { id: partnerB.globalId, key: keyA2.globalId },
      developerA.token,
    );
    expect(response.errors).toBeUndefined();
    expect(response.data!.partner).toBeNull();
    expect(response.data!.key.usageLogs.edges).toEqual([{ node: { apiKey: { id: keyA2.globalId } } }]);
  });
});

const SUMMARY = /* GraphQL */ `
  query Summary($partnerId: ID, $apiKeyId: ID, $from: DateTime, $to: DateTime, $bucket: UsageBucket) {
    usageSummary(partnerId: $partnerId, apiKeyId: $apiKeyId, from: $from, to: $to, bucket: $bucket) {
      totalRequests errorRequests
      byStatusCode { statusCode requestCount }
      byEndpoint { endpoint method requestCount errorRequests }
      series { bucketStart requestCount errorRequests }
    }
  }
`;

describe("usageSummary", () => {
  it("sums requestCount by status, endpoint and bucket, with empty buckets as zeros and half-open edges", async () => {
    const partner = await createPartner(server, "Summary");
    const key = await createKey(server, partner.id, partner.ownerId);
    const other = await createKey(server, partner.id, partner.ownerId);
    const at = (h: number, m = 0, s = 0) => new Date(Date.UTC(2026, 10, 20, h, m, s)).toISOString();
    await record([
      event(key, { endpoint: "/x", statusCode: 200, requestCount: 5, occurredAt: at(1, 0) }), // first instant of 01:00
      event(key, { endpoint: "/x", statusCode: 500, requestCount: 2, occurredAt: at(1, 59, 59) }),
      event(key, { endpoint: "/y", method: "POST", statusCode: 201, requestCount: 3, occurredAt: at(2, 30) }),
      event(other, { endpoint: "/x", statusCode: 404, requestCount: 4, occurredAt: at(4, 0) }), // 04:00 = `to`: excluded
      event(other, { endpoint: "/x", statusCode: 404, requestCount: 1, occurredAt: at(0, 59, 59) }), // before `from`
    ]);
    const response = await server.gql(
      SUMMARY,
      { partnerId: partner.globalId, from: at(1), to: at(4), bucket: "HOUR" },
      support.token,
    );
    expect(response.errors).toBeUndefined();
    expect(response.data!.usageSummary).toEqual({
      totalRequests: 10,
      errorRequests: 2,
      byStatusCode: [
        { statusCode: 200, requestCount: 5 },
        { statusCode: 201, requestCount: 3 },
        { statusCode: 500, requestCount: 2 },
      ],
      byEndpoint: [
        { endpoint: "/x", method: "GET", requestCount: 7, errorRequests: 2 },
        { endpoint: "/y", method: "POST", requestCount: 3, errorRequests: 0 },
      ],
      series: [
        { bucketStart: at(1), requestCount: 7, errorRequests: 2 },
        { bucketStart: at(2), requestCount: 3, errorRequests: 0 },
        { bucketStart: at(3), requestCount: 0, errorRequests: 0 },
      ],
    });

    const byKey = await server.gql(SUMMARY, { apiKeyId: other.globalId, from: at(0), to: at(5), bucket: "DAY" }, support.token);
    expect(byKey.data!.usageSummary).toMatchObject({
      totalRequests: 5,
      errorRequests: 5,
      series: [{ bucketStart: new Date(Date.UTC(2026, 10, 20)).toISOString(), requestCount: 5, errorRequests: 5 }],
    });
    const minutes = await server.gql(SUMMARY, { partnerId: partner.globalId, from: at(1, 59, 30), to: at(2, 0, 30), bucket: "MINUTE" }, support.token);
    expect(minutes.data!.usageSummary.series).toEqual([
      { bucketStart: at(1, 59), requestCount: 2, errorRequests: 2 },
      { bucketStart: at(2, 0), requestCount: 0, errorRequests: 0 },
    ]);

    // Partner B's developer sees none of it; signed out is refused.
    const developerB = await createUser(server, "summary-dev-b", "developer", partnerB.id);
    const asB = await server.gql(SUMMARY, { partnerId: partner.globalId, from: at(0), to: at(5) }, developerB.token);
    expect(asB.data!.usageSummary).toMatchObject({ totalRequests: 0, byStatusCode: [], byEndpoint: [] });
    expect(errorCodes(await server.gql(SUMMARY, {}))).toEqual(["UNAUTHENTICATED"]);
  });

  it("defaults to the last 24 hours by hour, and refuses too many buckets or a reversed window", async () => {
    const response = await server.gql(SUMMARY, {}, support.token);
    expect(response.data!.usageSummary.series).toHaveLength(24);
    expect(response.data!.usageSummary.series[0].bucketStart).toBe("2026-11-27T12:00:00.000Z");
    const tooMany = await server.gql(SUMMARY, { from: "2026-01-01T00:00:00Z", to: "2026-11-01T00:00:00Z", bucket: "MINUTE" }, support.token);
    expect(errorCodes(tooMany)).toEqual(["BAD_USER_INPUT"]);
    const reversed = await server.gql(SUMMARY, { from: "2026-11-02T00:00:00Z", to: "2026-11-01T00:00:00Z" }, support.token);
    expect(errorCodes(reversed)).toEqual(["BAD_USER_INPUT"]);
  });
});
