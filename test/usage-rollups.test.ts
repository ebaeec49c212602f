import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Prisma } from "../src/db/index.js";
import { rebuildUsageRollups } from "../src/usage/rollups.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { createGatewayCredential, createKey, createPartner, RECORD_USAGE, type TestKey } from "./support/usage.js";
import { createUser, type SignedInUser } from "./support/users.js";

// usageSummary answers whole buckets from the rollups ingest keeps and the window's edges from
// the raw rows. Whatever the split, every field must be what a plain query over the raw rows says.

const NOW = new Date("2026-11-28T12:34:56.789Z");
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const BUCKET_MS = { MINUTE, HOUR, DAY } as const;
type Bucket = keyof typeof BUCKET_MS;

let server: TestServer;
let gateway: string;
let support: SignedInUser;
let developer: SignedInUser;
let partners: Array<Awaited<ReturnType<typeof createPartner>>>;
let keys: TestKey[];

/** A seeded generator, so a failure can be replayed (the seed is in the test's name). */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const SEED = 20261128;
const rand = random(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

const ENDPOINTS = ["/v1/orders", "/v1/orders/1", "/v1/items", "/v1/Items", "/a", "/v1/orders?x=1", "/z/é"];
const METHODS = ["GET", "POST", "PUT", "DELETE", "patch"];
const CODES = [200, 201, 204, 301, 399, 400, 404, 429, 500, 503];
const ORIGIN = NOW.getTime() - 3 * DAY;

/** Times spread over three days, a third of them on or next to a minute, hour or day boundary. */
function randomTime(): number {
  const t = ORIGIN + Math.floor(rand() * (NOW.getTime() - ORIGIN));
  if (rand() < 0.66) return t;
  const size = pick([MINUTE, HOUR, DAY]);
  return Math.min(NOW.getTime(), Math.floor(t / size) * size + pick([-1, 0, 0, 1]));
}

beforeAll(async () => {
  server = await startTestServer({ now: () => NOW });
  gateway = await createGatewayCredential(server);
  partners = [await createPartner(server, "Rollups A"), await createPartner(server, "Rollups B")];
  keys = [];
  for (const partner of partners) {
    for (let i = 0; i < 3; i++) keys.push(await createKey(server, partner.id, partner.ownerId));
  }
  support = await createUser(server, "rollups-support", "support");
  developer = await createUser(server, "rollups-dev", "developer", partners[0]!.id);
  // Several batches, so later ones add to rollup rows earlier ones made.
  for (let batch = 0; batch < 6; batch++) {
    const events = Array.from({ length: 400 }, () => ({
      apiKeyId: pick(keys).globalId,
      endpoint: pick(ENDPOINTS),
      method: pick(METHODS),
      statusCode: pick(CODES),
      requestCount: rand() < 0.2 ? 1 + Math.floor(rand() * 1000) : rand() < 0.5 ? null : 1 + Math.floor(rand() * 5),
      occurredAt: new Date(randomTime()).toISOString(),
    }));
    const response = await server.gql(RECORD_USAGE, { events }, gateway);
    expect(response.data?.recordUsage, JSON.stringify(response.errors)).toMatchObject({ accepted: 400, rejected: [] });
  }
});
afterAll(async () => {
  await server?.close();
});

const SUMMARY = /* GraphQL */ `
  query Summary($partnerId: ID, $apiKeyId: ID, $from: DateTime, $to: DateTime, $bucket: UsageBucket) {
    usageSummary(partnerId: $partnerId, apiKeyId: $apiKeyId, from: $from, to: $to, bucket: $bucket) {
      from to bucket totalRequests errorRequests
      byStatusCode { statusCode requestCount }
      byEndpoint { endpoint method requestCount errorRequests }
      series { bucketStart requestCount errorRequests }
    }
  }
`;

interface Scope {
  partnerIds?: string[];
  apiKeyId?: string;
}

/** The summary computed the plain way: one scan of the raw rows in the window. */
async function fromRawRows(scope: Scope, from: number, to: number, bucket: Bucket) {
  const prisma = server.app.services.prisma;
  const conditions = [
    Prisma.sql`"occurredAt" >= ${new Date(from).toISOString()}::timestamp(3)`,
    Prisma.sql`"occurredAt" < ${new Date(to).toISOString()}::timestamp(3)`,
  ];
  if (scope.partnerIds) conditions.push(Prisma.sql`"partnerId" = ANY(${scope.partnerIds}::text[])`);
  if (scope.apiKeyId) conditions.push(Prisma.sql`"apiKeyId" = ${scope.apiKeyId}`);
  const where = Prisma.join(conditions, " AND ");
  const rows = await prisma.$queryRaw<
    Array<{ endpoint: string; method: string; statusCode: number; requestCount: number; at: number }>
  >`SELECT endpoint, method::text AS method, "statusCode", "requestCount",
           (extract(epoch FROM "occurredAt") * 1000)::float8 AS at
    FROM "UsageLog" WHERE ${where}`;
  const [totals] = await prisma.$queryRaw<Array<{ total: bigint; errors: bigint }>>`
    SELECT COALESCE(SUM("requestCount"), 0)::bigint AS total,
           COALESCE(SUM("requestCount") FILTER (WHERE "statusCode" >= 400), 0)::bigint AS errors
    FROM "UsageLog" WHERE ${where}`;
  const byStatus = await prisma.$queryRaw<Array<{ statusCode: number; requestCount: bigint }>>`
    SELECT "statusCode", SUM("requestCount")::bigint AS "requestCount"
    FROM "UsageLog" WHERE ${where} GROUP BY "statusCode" ORDER BY "statusCode"`;
  const byEndpoint = await prisma.$queryRaw<Array<{ endpoint: string; method: string; requestCount: bigint; errorRequests: bigint }>>`
    SELECT endpoint, method::text AS method, SUM("requestCount")::bigint AS "requestCount",
           COALESCE(SUM("requestCount") FILTER (WHERE "statusCode" >= 400), 0)::bigint AS "errorRequests"
    FROM "UsageLog" WHERE ${where} GROUP BY endpoint, method`;
  const size = BUCKET_MS[bucket];
  const series: Array<{ bucketStart: string; requestCount: number; errorRequests: number }> = [];
  for (let start = Math.floor(from / size) * size; start < to; start += size) {
    const inBucket = rows.filter((row) => row.at >= start && row.at < start + size);
    series.push({
      bucketStart: new Date(start).toISOString(),
      requestCount: inBucket.reduce((sum, row) => sum + row.requestCount, 0),
      errorRequests: inBucket.reduce((sum, row) => sum + (row.statusCode >= 400 ? row.requestCount : 0), 0),
    });
  }
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucket,
    totalRequests: Number(totals!.total),
    errorRequests: Number(totals!.errors),
    byStatusCode: byStatus.map((row) => ({ statusCode: row.statusCode, requestCount: Number(row.requestCount) })),
    byEndpoint: byEndpoint
      .map((row) => ({ ...row, requestCount: Number(row.requestCount), errorRequests: Number(row.errorRequests) }))
      .sort(
        (a, b) =>
          b.requestCount - a.requestCount || a.endpoint.localeCompare(b.endpoint) || a.method.localeCompare(b.method),
      ),
    series,
  };
}

/** Windows that cut buckets, fall on their edges, hold less than one, or cover everything. */
function windows(bucket: Bucket): Array<[number, number]> {
  const span = { MINUTE: 6 * HOUR, HOUR: 2 * DAY, DAY: 4 * DAY }[bucket];
  const result: Array<[number, number]> = [
    [NOW.getTime() - span, NOW.getTime()],
    [Math.floor((NOW.getTime() - span) / DAY) * DAY, Math.floor(NOW.getTime() / HOUR) * HOUR],
    [ORIGIN - DAY, NOW.getTime() + MINUTE],
    [Math.floor(NOW.getTime() / MINUTE) * MINUTE - 1, Math.floor(NOW.getTime() / MINUTE) * MINUTE + 1],
    [Math.floor((ORIGIN + DAY) / DAY) * DAY + 1, Math.floor((ORIGIN + 2 * DAY) / DAY) * DAY - 1],
    [Math.floor((ORIGIN + DAY) / HOUR) * HOUR + 30_000, Math.floor((ORIGIN + DAY) / HOUR) * HOUR + 40_000],
  ];
  for (let i = 0; i < 6; i++) {
    const from = randomTime() - Math.floor(rand() * span);
    const to = Math.min(from + 1 + Math.floor(rand() * span), from + span);
    result.push([from, to]);
  }
  return result;
}

describe(`usageSummary from rollups equals the raw scan (seed ${SEED})`, () => {
  for (const bucket of ["DAY", "HOUR", "MINUTE"] as const) {
    it(`${bucket} buckets, for a partner, a key, a partner's member and staff`, async () => {
      for (const [from, to] of windows(bucket)) {
        const key = pick(keys);
        const cases: Array<{ variables: Record<string, unknown>; token: string; scope: Scope }> = [
          { variables: { partnerId: partners[0]!.globalId }, token: support.token, scope: { partnerIds: [partners[0]!.id] } },
          { variables: { partnerId: partners[1]!.globalId }, token: support.token, scope: { partnerIds: [partners[1]!.id] } },
          { variables: { apiKeyId: key.globalId }, token: support.token, scope: { apiKeyId: key.id } },
          { variables: {}, token: developer.token, scope: { partnerIds: [partners[0]!.id] } },
          { variables: {}, token: support.token, scope: {} },
        ];
        for (const { variables, token, scope } of cases) {
          const response = await server.gql(
            SUMMARY,
            { ...variables, from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket },
            token,
          );
          expect(response.errors).toBeUndefined();
          const expected = await fromRawRows(scope, from, to, bucket);
          expect(response.data!.usageSummary, `${JSON.stringify(variables)} [${from}, ${to})`).toEqual(expected);
        }
      }
    });
  }

  it("holds rows at every grain (so the windows above read rollups as well as raw edges)", async () => {
    const prisma = server.app.services.prisma;
    const grains = await prisma.$queryRaw<Array<{ grain: string; rows: bigint; requests: bigint }>>`
      SELECT grain::text AS grain, COUNT(*)::bigint AS rows, SUM("requestCount")::bigint AS requests
      FROM "UsageStatusRollup" GROUP BY grain ORDER BY grain`;
    const [raw] = await prisma.$queryRaw<Array<{ requests: bigint }>>`SELECT SUM("requestCount")::bigint AS requests FROM "UsageLog"`;
    expect(grains.map((row) => row.grain).sort()).toEqual(["DAY", "HOUR", "MINUTE"]);
    for (const row of grains) expect(row.requests).toBe(raw!.requests);
  });

  it("rebuilding a partner's rollups from its raw rows (as the migration's backfill does) gives the sums ingest kept", async () => {
    const prisma = server.app.services.prisma;
    const read = async () => [
      await prisma.$queryRaw`SELECT grain::text, "bucketStart", "statusCode", "requestCount" FROM "UsageStatusRollup"
                             WHERE "partnerId" = ${partners[0]!.id} ORDER BY 1, 2, 3`,
      await prisma.$queryRaw`SELECT grain::text, "bucketStart", endpoint, method::text, "requestCount", "errorRequests"
                             FROM "UsageEndpointRollup" WHERE "partnerId" = ${partners[0]!.id} ORDER BY 1, 2, 3, 4`,
    ];
    const kept = await read();
    expect((kept[0] as unknown[]).length).toBeGreaterThan(100);
    await rebuildUsageRollups(prisma, [partners[0]!.id]);
    expect(await read()).toEqual(kept);
  });
});
