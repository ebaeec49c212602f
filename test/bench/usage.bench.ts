import { performance } from "node:perf_hooks";
import pg from "pg";
import { v7 as uuidv7 } from "uuid";
import { Prisma } from "../../src/db/index.js";
import { rebuildUsageRollups } from "../../src/usage/rollups.js";
import { TEST_DATABASE_URL } from "../support/database.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { createGatewayCredential, createKey, createPartner, RECORD_USAGE, type TestKey } from "../support/usage.js";
import { createUser } from "../support/users.js";
import { printFigures, summarise } from "./stats.js";

const BATCHES = Number(process.env.BENCH_USAGE_BATCHES ?? 60);
const BATCH_SIZE = 1000;
/**
 * Events seeded before each round of summaries; 10,000,000 takes long here, so it is opt-in.
 * `BENCH_USAGE_SIZES=0` measures ingest only.
 */
const SIZES = (process.env.BENCH_USAGE_SIZES ?? "1000000").split(",").map(Number).filter((size) => size > 0);
const SUMMARY_CALLS = Number(process.env.BENCH_USAGE_SUMMARY_CALLS ?? 40);
const RAW_SCAN_CALLS = Number(process.env.BENCH_USAGE_RAW_CALLS ?? 6);
const KEYS = 20;
const ENDPOINTS = 40;
const CODES = [200, 201, 204, 301, 304, 400, 401, 404, 429, 500];
const METHODS = ["GET", "POST", "PUT", "DELETE"];
const DAY = 86_400_000;

/**
 * `npm run bench -- usage`. One run, one PostgreSQL (TEST_DATABASE_URL's server, else the
 * embedded database, labelled):
 * 1. ingest: a raw `INSERT … SELECT FROM unnest(…)` of the same UsageLog rows (the baseline, a
 *    plain pg connection) against recordUsage over HTTP with a service credential (validation,
 *    idempotency record, lastUsedAt and rollup upkeep included), batches of 1,000, interleaved;
 * 2. summaries: a partner with 1M events (20 keys, 40 endpoints, 10 status codes, over 30 days)
 *    seeded by set-based SQL; usageSummary over HTTP against the raw scan (the grouping query
 *    over every row in the window, as summaries were answered before the rollups), same answers.
 */
export default async function run(): Promise<void> {
  const server = await startTestServer();
  const label = TEST_DATABASE_URL ? "PostgreSQL at TEST_DATABASE_URL" : "embedded PGlite (no TEST_DATABASE_URL)";
  console.log(`database: ${label}`);
  try {
    await ingest(server);
    if (SIZES.length > 0) await summaries(server);
  } finally {
    await server.close();
  }
}

async function ingest(server: TestServer) {
  const gateway = await createGatewayCredential(server);
  const partner = await createPartner(server, "Bench ingest");
  const keys: TestKey[] = [];
  for (let i = 0; i < KEYS; i++) keys.push(await createKey(server, partner.id, partner.ownerId));
  const events = () => {
    const now = Date.now();
    return Array.from({ length: BATCH_SIZE }, (_, i) => ({
      apiKeyId: keys[i % KEYS]!.globalId,
      endpoint: `/v1/bench/${(i * 7) % ENDPOINTS}`,
      method: METHODS[((i * 7) % ENDPOINTS) % METHODS.length]!,
      statusCode: CODES[(i * 13) % CODES.length]!,
      requestCount: 1 + (i % 3),
      occurredAt: new Date(now - ((i * 37) % 60_000)).toISOString(),
    }));
  };

  const parsed = (batch: ReturnType<typeof events>) => batch.map((e) => ({ ...e, occurredAt: new Date(e.occurredAt) }));
  // The baseline writes through its own connection, as a bulk loader would.
  const direct = TEST_DATABASE_URL ? new pg.Client({ connectionString: server.config.databaseUrl }) : undefined;
  await direct?.connect();
  const rawInsert = async (batch: ReturnType<typeof events>) => {
    const at = new Date().toISOString();
    const columns = [
      batch.map(() => uuidv7()),
      batch.map(() => partner.id),
      batch.map((e) => keys.find((k) => k.globalId === e.apiKeyId)!.id),
      batch.map((e) => e.endpoint),
      batch.map((e) => e.method),
      batch.map((e) => e.statusCode),
      batch.map((e) => e.requestCount),
      batch.map((e) => e.occurredAt),
    ];
    const sql = `
      INSERT INTO "UsageLog" (id, "partnerId", "apiKeyId", endpoint, method, "statusCode", "requestCount", "occurredAt", "createdAt", "updatedAt")
      SELECT id, "partnerId", "apiKeyId", endpoint, method::"HttpMethod", "statusCode", "requestCount", "occurredAt"::timestamp(3), $9::timestamp(3), $9::timestamp(3)
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::text[])
        AS u(id, "partnerId", "apiKeyId", endpoint, method, "statusCode", "requestCount", "occurredAt")`;
    const inserted = direct
      ? (await direct.query(sql, [...columns, at])).rowCount
      : await server.app.services.prisma.$executeRawUnsafe(sql, ...columns, at);
    if (inserted !== batch.length) throw new Error(`raw insert wrote ${inserted} rows`);
  };

  // Warm both paths, then interleave them so load on the machine falls on both alike.
  await rawInsert(events());
  await server.gql(RECORD_USAGE, { events: events() }, gateway);
  await server.app.services.usage.record("service:bench", parsed(events()));
  const raw: number[] = [];
  const recorded: number[] = [];
  const domain: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const batch = events();
    let t0 = performance.now();
    await rawInsert(batch);
    raw.push(performance.now() - t0);
    const again = events();
    t0 = performance.now();
    const response = await server.gql(RECORD_USAGE, { events: again, idempotencyKey: `bench-${b}` }, gateway);
    recorded.push(performance.now() - t0);
    if (response.data?.recordUsage.accepted !== BATCH_SIZE) throw new Error(JSON.stringify(response).slice(0, 500));
    // The same operation without HTTP and GraphQL: what ingest itself costs.
    const direct = parsed(events());
    t0 = performance.now();
    const result = await server.app.services.usage.record("service:bench", direct, `bench-direct-${b}`);
    domain.push(performance.now() - t0);
    if (result.accepted !== BATCH_SIZE) throw new Error(JSON.stringify(result).slice(0, 500));
  }
  await direct?.end();
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0) / 1000;
  const rawFigures = { ...summarise(raw, sum(raw)), operations: BATCHES * BATCH_SIZE };
  const recordFigures = { ...summarise(recorded, sum(recorded)), operations: BATCHES * BATCH_SIZE };
  const domainFigures = { ...summarise(domain, sum(domain)), operations: BATCHES * BATCH_SIZE };
  printFigures(`raw unnest INSERT${direct ? "" : " (via Prisma)"}`, rawFigures, "rows");
  printFigures(`recordUsage over HTTP`, recordFigures, "rows");
  printFigures(`usage.record (no HTTP/GraphQL)`, domainFigures, "rows");
  console.log(
    `  (batches of ${BATCH_SIZE}, p50/p99 per batch)  recordUsage / raw insert = ${(rawFigures.seconds / recordFigures.seconds).toFixed(2)}×` +
      `   usage.record / raw insert = ${(rawFigures.seconds / domainFigures.seconds).toFixed(2)}×`,
  );

  // Every accepted event reached the rollups.
  const [check] = await server.app.services.prisma.$queryRaw<Array<{ rolled: bigint }>>`
    SELECT SUM("requestCount")::bigint AS rolled FROM "UsageStatusRollup" WHERE "partnerId" = ${partner.id} AND grain = 'DAY'`;
  const expectedRolled = BigInt((2 * BATCHES + 2) * events().reduce((total, e) => total + e.requestCount, 0));
  if (check!.rolled !== expectedRolled) throw new Error(`rollups hold ${check!.rolled}, expected ${expectedRolled}`);
}

const SUMMARY = /* GraphQL */ `
  query Summary($partnerId: ID, $from: DateTime, $to: DateTime, $bucket: UsageBucket) {
    usageSummary(partnerId: $partnerId, from: $from, to: $to, bucket: $bucket) {
      totalRequests errorRequests
      byStatusCode { statusCode requestCount }
      byEndpoint { endpoint method requestCount errorRequests }
      series { bucketStart requestCount errorRequests }
    }
  }
`;

async function summaries(server: TestServer) {
  const prisma = server.app.services.prisma;
  const partner = await createPartner(server, "Bench summaries");
  const keys: string[] = [];
  for (let i = 0; i < KEYS; i++) keys.push((await createKey(server, partner.id, partner.ownerId)).id);
  const viewer = await createUser(server, "bench-summary-support", "support");
  const now = new Date();
  let seeded = 0;
  for (const size of SIZES) {
    const started = performance.now();
    // Set-based seeding in chunks: 20 keys, 40 endpoint/method pairs, 10 codes, over the last 30 days.
    for (let first = seeded; first < size; first += 250_000) {
      const last = Math.min(size, first + 250_000) - 1;
      await prisma.$executeRaw`
        INSERT INTO "UsageLog" (id, "partnerId", "apiKeyId", endpoint, method, "statusCode", "requestCount", "occurredAt", "createdAt", "updatedAt")
        SELECT gen_random_uuid()::text, ${partner.id}, (${keys}::text[])[1 + i % ${KEYS}],
               '/v1/bench/' || ((i * 7) % ${ENDPOINTS}), ((${METHODS}::text[])[1 + ((i * 7) % ${ENDPOINTS}) % ${METHODS.length}])::"HttpMethod",
               (${CODES}::int[])[1 + (i * 13) % ${CODES.length}], 1 + i % 3,
               (${now.toISOString()}::timestamp(3) - random() * interval '30 days')::timestamp(3),
               ${now.toISOString()}::timestamp(3), ${now.toISOString()}::timestamp(3)
        FROM generate_series(${first}::int, ${last}::int) AS i`;
    }
    seeded = size;
    // The rollups of the seeded rows, as the migration's backfill makes them.
    await rebuildUsageRollups(prisma, [partner.id]);
    await prisma.$executeRaw`VACUUM ANALYZE "UsageLog"`.catch(() => prisma.$executeRaw`ANALYZE "UsageLog"`);
    await prisma.$executeRaw`ANALYZE "UsageStatusRollup"`;
    await prisma.$executeRaw`ANALYZE "UsageEndpointRollup"`;
    console.log(`\n${size.toLocaleString("en")} events seeded for one partner in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    // What any signed-in request costs here, for scale.
    const floor: number[] = [];
    const floorStarted = performance.now();
    for (let i = 0; i < SUMMARY_CALLS; i++) {
      const t0 = performance.now();
      const response = await server.gql(`{ viewer { id } }`, {}, viewer.token);
      floor.push(performance.now() - t0);
      if (!response.data?.viewer) throw new Error(JSON.stringify(response.errors));
    }
    printFigures("{ viewer { id } } (HTTP floor)", summarise(floor, (performance.now() - floorStarted) / 1000), "calls");

    const shapes = [
      { bucket: "DAY", span: 30 * DAY },
      { bucket: "HOUR", span: 7 * DAY },
      { bucket: "MINUTE", span: 6 * 3_600_000 },
    ] as const;
    for (const { bucket, span } of shapes) {
      const window = () => {
        const to = new Date();
        return { from: new Date(to.getTime() - span), to };
      };
      const api: number[] = [];
      let first: { from: Date; to: Date; summary: { totalRequests: number; errorRequests: number; series: unknown[] } } | undefined;
      const apiStarted = performance.now();
      for (let i = 0; i < SUMMARY_CALLS; i++) {
        const { from, to } = window();
        const t0 = performance.now();
        const response = await server.gql(SUMMARY, { partnerId: partner.globalId, from, to, bucket }, viewer.token);
        api.push(performance.now() - t0);
        if (!response.data?.usageSummary) throw new Error(JSON.stringify(response.errors));
        first ??= { from, to, summary: response.data.usageSummary };
      }
      const apiSeconds = (performance.now() - apiStarted) / 1000;
      // The first answer is the raw scan's over the same window (checked after timing).
      const raw = await rawScan(server, partner.id, first!.from, first!.to, bucket);
      const { summary } = first!;
      if (summary.totalRequests !== raw.totalRequests || summary.errorRequests !== raw.errorRequests || summary.series.length !== raw.buckets) {
        throw new Error(`usageSummary ${JSON.stringify([summary.totalRequests, summary.errorRequests])} ≠ raw scan ${JSON.stringify(raw)}`);
      }
      // The same summaries in process: what the database and the summary code cost without HTTP.
      const inProcess: number[] = [];
      const inProcessStarted = performance.now();
      for (let i = 0; i < SUMMARY_CALLS; i++) {
        const t0 = performance.now();
        const summary = await server.app.services.usage.summarize({ readable: "all", partnerId: partner.id }, { ...window(), bucket });
        inProcess.push(performance.now() - t0);
        if (summary.totalRequests === 0) throw new Error("empty summary");
      }
      const inProcessSeconds = (performance.now() - inProcessStarted) / 1000;
      const scan: number[] = [];
      const scanStarted = performance.now();
      for (let i = 0; i < RAW_SCAN_CALLS; i++) {
        const { from, to } = window();
        const t0 = performance.now();
        await rawScan(server, partner.id, from, to, bucket);
        scan.push(performance.now() - t0);
      }
      const scanSeconds = (performance.now() - scanStarted) / 1000;
      const apiFigures = summarise(api, apiSeconds);
      const scanFigures = summarise(scan, scanSeconds);
      const span_ = { DAY: "30 days", HOUR: "7 days", MINUTE: "6 hours" }[bucket];
      printFigures(`usageSummary ${bucket} over ${span_} (HTTP)`, apiFigures, "calls");
      printFigures(`usage.summarize ${bucket} (in process)`, summarise(inProcess, inProcessSeconds), "calls");
      printFigures(`raw scan ${bucket} over ${span_} (SQL)`, scanFigures, "calls");
      console.log(`  p50 raw scan / usageSummary = ${(scanFigures.p50Ms / apiFigures.p50Ms).toFixed(1)}×`);
    }
  }
}

/** The summary as one scan of the raw rows in the window (how it was answered before the rollups). */
async function rawScan(server: TestServer, partnerId: string, from: Date, to: Date, bucket: "DAY" | "HOUR" | "MINUTE") {
  const prisma = server.app.services.prisma;
  const unit = bucket.toLowerCase();
  const where = Prisma.sql`"partnerId" = ${partnerId} AND "occurredAt" >= ${from.toISOString()}::timestamp(3) AND "occurredAt" < ${to.toISOString()}::timestamp(3)`;
  const isError = Prisma.sql`CASE WHEN "statusCode" >= 400 THEN "requestCount" ELSE 0 END`;
  const [groups, series] = await Promise.all([
    prisma.$queryRaw<Array<{ byStatus: number; byEndpoint: number; requests: bigint; errors: bigint }>>`
      SELECT "statusCode", endpoint, method::text AS method,
             GROUPING("statusCode") AS "byStatus", GROUPING(endpoint, method) AS "byEndpoint",
             SUM("requestCount")::bigint AS requests, SUM(${isError})::bigint AS errors
      FROM "UsageLog" WHERE ${where}
      GROUP BY GROUPING SETS ((), ("statusCode"), (endpoint, method))`,
    prisma.$queryRaw<Array<{ start: Date; requests: bigint }>>`
      WITH counts AS (
        SELECT date_trunc(${unit}, "occurredAt") AS start, SUM("requestCount")::bigint AS requests
        FROM "UsageLog" WHERE ${where} GROUP BY 1)
      SELECT b.start, COALESCE(c.requests, 0)::bigint AS requests
      FROM generate_series(date_trunc(${unit}, ${from.toISOString()}::timestamp(3)),
                           date_trunc(${unit}, ${new Date(to.getTime() - 1).toISOString()}::timestamp(3)),
                           ${`1 ${unit}`}::interval) AS b(start)
      LEFT JOIN counts c ON c.start = b.start ORDER BY b.start`,
  ]);
  const total = groups.find((row) => Number(row.byStatus) === 1 && Number(row.byEndpoint) !== 0);
  return { totalRequests: Number(total?.requests ?? 0), errorRequests: Number(total?.errors ?? 0), buckets: series.length };
}
