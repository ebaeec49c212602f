import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";
import { createUsageRetention } from "../src/usage/retention.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, event, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

const NOW = new Date("2026-11-28T12:34:56.789Z");
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

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
const LOGS = /* GraphQL */ `
  query Logs($first: Int) { usageLogs(first: $first) { edges { node { endpoint occurredAt } } } }
`;

async function seed(server: TestServer) {
  const gateway = await createGatewayCredential(server);
  const partner = await createPartner(server, "Retention");
  const key = await createKey(server, partner.id, partner.ownerId);
  const support = await createUser(server, "retention-support", "support");
  const at = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
  const events = [
    ...Array.from({ length: 7 }, (_, i) =>
      event(key, { endpoint: `/old/${i}`, statusCode: i % 2 ? 500 : 200, requestCount: i + 1, occurredAt: at(2 * DAY + i * HOUR) }),
    ),
    event(key, { endpoint: "/recent", statusCode: 404, requestCount: 3, occurredAt: at(HOUR) }),
    event(key, { endpoint: "/recent", statusCode: 200, requestCount: 2, occurredAt: at(60_000) }),
  ];
  const response = await server.gql(RECORD_USAGE, { events }, gateway);
  expect(response.data?.recordUsage).toMatchObject({ accepted: 9, rejected: [] });
  return { partner, key, support };
}

const window = { from: new Date(Math.floor((NOW.getTime() - 3 * DAY) / DAY) * DAY).toISOString(), to: NOW.toISOString() };

describe("USAGE_RETENTION_DAYS", () => {
  let server: TestServer;
  let partner: Awaited<ReturnType<typeof createPartner>>;
  let key: TestKey;
  let support: SignedInUser;
  beforeAll(async () => {
    server = await startTestServer({ now: () => NOW, env: { USAGE_RETENTION_DAYS: "1" }, watchStatements: true });
    ({ partner, key, support } = await seed(server));
  });
  afterAll(async () => {
    await server?.close();
  });

  it("deletes raw rows older than the period, while partner summaries keep their totals", async () => {
    const summaries = async () =>
      Promise.all(
        (["DAY", "HOUR", "MINUTE"] as const).map(async (bucket) => {
          // MINUTE: at most 10,000 buckets, and a start that cuts a minute inside the deleted range.
          const from = bucket === "MINUTE" ? new Date(NOW.getTime() - 2 * DAY - 12 * HOUR).toISOString() : window.from;
          const response = await server.gql(SUMMARY, { partnerId: partner.globalId, from, to: window.to, bucket }, support.token);
          expect(response.errors).toBeUndefined();
          return response.data!.usageSummary;
        }),
      );
    const before = await summaries();
    expect(before.map((summary) => summary.totalRequests)).toEqual([33, 33, 33]);

    expect(await server.app.services.usage.sweepExpired()).toBe(7);
    expect(await server.app.services.usage.sweepExpired()).toBe(0);

    const logs = await server.gql(LOGS, { first: 50 }, support.token);
    expect(logs.data!.usageLogs.edges.map((edge: { node: { endpoint: string } }) => edge.node.endpoint)).toEqual([
      "/recent",
      "/recent",
    ]);
    expect(await summaries()).toEqual(before);
    // A key's summary reads raw rows (the rollups are per partner): only what is kept.
    const byKey = await server.gql(SUMMARY, { apiKeyId: key.globalId, ...window, bucket: "DAY" }, support.token);
    expect(byKey.data!.usageSummary.totalRequests).toBe(5);
  });

  it("deletes in batches of the given size until none is left", async () => {
    const gateway = await createGatewayCredential(server, "retention-batches");
    const events = Array.from({ length: 10 }, (_, i) =>
      event(key, { endpoint: `/batch/${i}`, occurredAt: new Date(NOW.getTime() - 2 * DAY - i).toISOString() }),
    );
    expect((await server.gql(RECORD_USAGE, { events }, gateway)).data?.recordUsage.accepted).toBe(10);
    const retention = createUsageRetention({ prisma: server.app.services.prisma, days: 1, now: () => NOW, batchRows: 3 });
    try {
      const statements = server.statements!.statements;
      expect(await retention.sweep()).toBe(10);
      // 3 + 3 + 3 + 1 rows: four DELETEs, each its own short transaction.
      expect(server.statements!.statements - statements).toBe(4);
    } finally {
      await retention.close();
    }
    const [left] = await server.app.services.prisma.$queryRaw<Array<{ count: bigint }>>`
      SELECT COUNT(*)::bigint AS count FROM "UsageLog" WHERE "occurredAt" < ${new Date(NOW.getTime() - DAY).toISOString()}::timestamp(3)`;
    expect(left!.count).toBe(0n);
  });
});

describe("without USAGE_RETENTION_DAYS", () => {
  it("keeps every raw row", async () => {
    const server = await startTestServer({ now: () => NOW });
    try {
      await seed(server);
      expect(await server.app.services.usage.sweepExpired()).toBe(0);
      expect(await server.app.services.prisma.usageLog.count()).toBe(9);
    } finally {
      await server.close();
    }
  });

  it("refuses a period that is not a whole number of days of at least 1", () => {
    for (const value of ["0", "-3", "1.5", "soon"]) {
      expect(() => loadConfig({ USAGE_RETENTION_DAYS: value })).toThrow(ConfigError);
    }
    expect(loadConfig({ USAGE_RETENTION_DAYS: "400" }).usageRetentionDays).toBe(400);
    expect(loadConfig({}).usageRetentionDays).toBeUndefined();
  });
});
