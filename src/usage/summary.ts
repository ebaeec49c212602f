import { Prisma, type PrismaClient } from "../db/index.js";
import type { HttpMethod } from "../generated/prisma/enums.js";
import { badInput } from "../errors.js";
import { bucketStart, ERROR_STATUS_FROM, GRAIN_MS, USAGE_GRAINS, type UsageGrain } from "./buckets.js";
import type { PartnerReach } from "./stream.js";

export { ERROR_STATUS_FROM } from "./buckets.js";
export type UsageBucket = UsageGrain;

const BUCKET_UNIT: Record<UsageBucket, string> = { MINUTE: "minute", HOUR: "hour", DAY: "day" };

/** A series longer than this is refused: it bounds the rows one request makes PostgreSQL generate. */
export const MAX_SUMMARY_BUCKETS = 10_000;
export const DEFAULT_SUMMARY_WINDOW_MS = 24 * 3_600_000;

export interface UsageScope {
  /** The partners whose usage the viewer may read. */
  readable: PartnerReach;
  partnerId?: string;
  apiKeyId?: string;
}

/** `[from, to)`, in buckets of this width; defaults: to now, from a day before `to`, HOUR. */
export interface UsageWindow {
  from?: Date | null;
  to?: Date | null;
  bucket?: UsageBucket | null;
}

export interface UsageSummaryResult {
  from: Date;
  to: Date;
  bucket: UsageBucket;
  totalRequests: number;
  errorRequests: number;
  byStatusCode: Array<{ statusCode: number; requestCount: number }>;
  byEndpoint: Array<{ endpoint: string; method: HttpMethod; requestCount: number; errorRequests: number }>;
  series: Array<{ bucketStart: Date; requestCount: number; errorRequests: number }>;
}

/** A part of the window `[from, to)` (ms), read from the raw rows or from one grain of the rollups. */
export type WindowPiece = { source: "raw" | UsageGrain; from: number; to: number };

/**
 * Cuts `[from, to)` into the coarsest whole buckets the grains allow (coarsest first) and raw
 * edges: 00:00:30–02:00:00 with HOUR and MINUTE is raw 00:00:30–00:01, minutes 00:01–01:00, hour
 * 01:00–02:00. At most two pieces per grain and two raw edges, whatever the window's length.
 */
export function windowPieces(from: number, to: number, grains: readonly UsageGrain[]): WindowPiece[] {
  if (from >= to) return [];
  const [grain, ...finer] = grains;
  if (!grain) return [{ source: "raw", from, to }];
  const size = GRAIN_MS[grain];
  const first = Math.ceil(from / size) * size;
  const last = Math.floor(to / size) * size;
  if (first >= last) return windowPieces(from, to, finer);
  return [...windowPieces(from, first, finer), { source: grain, from: first, to: last }, ...windowPieces(last, to, finer)];
}

/**
 * Totals over [from, to). Whole buckets come from the rollups ingest keeps (for the series and
 * status codes never coarser than the series' bucket, so each rollup row lies in one series
 * bucket; for endpoints the coarsest that fit), the partial minutes at the window's edges from
 * the raw rows. The rows read are bounded by the window's bucket count, not by the events stored.
 * A key's summary reads its raw rows (the rollups are per partner).
 */
export async function summarizeUsage(
  services: { prisma: PrismaClient; now: () => Date },
  scope: UsageScope,
  window: UsageWindow,
): Promise<UsageSummaryResult> {
  const bucket = window.bucket ?? "HOUR";
  const to = window.to ?? services.now();
  const from = window.from ?? new Date(to.getTime() - DEFAULT_SUMMARY_WINDOW_MS);
  if (from.getTime() >= to.getTime()) throw badInput("from must be before to");
  const size = GRAIN_MS[bucket];
  const firstStart = bucketStart(from.getTime(), bucket);
  const lastStart = bucketStart(to.getTime() - 1, bucket);
  const buckets = (lastStart - firstStart) / size + 1;
  if (buckets > MAX_SUMMARY_BUCKETS) {
    throw badInput(`The window holds ${buckets} ${bucket} buckets; at most ${MAX_SUMMARY_BUCKETS} are allowed`, {
      maxBuckets: MAX_SUMMARY_BUCKETS,
    });
  }

  // The series needs rollup rows no wider than its buckets; the per-endpoint totals take any width.
  const coarsestFirst = [...USAGE_GRAINS].reverse();
  const seriesGrains = scope.apiKeyId ? [] : coarsestFirst.slice(coarsestFirst.indexOf(bucket));
  const endpointGrains = scope.apiKeyId ? [] : coarsestFirst;
  const partners: Prisma.Sql[] = [];
  if (scope.readable !== "all") partners.push(Prisma.sql`"partnerId" = ANY(${[...scope.readable]}::text[])`);
  if (scope.partnerId) partners.push(Prisma.sql`"partnerId" = ${scope.partnerId}`);
  const raw = [...partners, ...(scope.apiKeyId ? [Prisma.sql`"apiKeyId" = ${scope.apiKeyId}`] : [])];
  const ts = (ms: number) => Prisma.sql`${new Date(ms).toISOString()}::timestamp(3)`;
  const where = (conditions: Prisma.Sql[]) => (conditions.length ? Prisma.join(conditions, " AND ") : Prisma.sql`TRUE`);
  /** One SELECT per piece of the window, each a range scan of its own index. */
  const union = (grains: readonly UsageGrain[], rollup: Prisma.Sql, rawRows: Prisma.Sql) =>
    Prisma.join(
      windowPieces(from.getTime(), to.getTime(), grains).map((piece) =>
        piece.source === "raw"
          ? Prisma.sql`${rawRows} WHERE ${where([...raw, Prisma.sql`"occurredAt" >= ${ts(piece.from)}`, Prisma.sql`"occurredAt" < ${ts(piece.to)}`])}`
          : Prisma.sql`${rollup} WHERE ${where([
              ...partners,
              Prisma.sql`grain = ${piece.source}::"UsageGrain"`,
              Prisma.sql`"bucketStart" >= ${ts(piece.from)}`,
              Prisma.sql`"bucketStart" < ${ts(piece.to)}`,
            ])}`,
      ),
      " UNION ALL ",
    );

  const [, byStatus, byEndpointRows] = await services.prisma.$transaction([
    // Parallel workers would start for a few thousand rows and cost more than the scan.
    services.prisma.$executeRaw`SET LOCAL max_parallel_workers_per_gather = 0`,
    services.prisma.$queryRaw<Array<{ start: Date | string; statusCode: number; requests: bigint }>>`
      SELECT date_trunc(${BUCKET_UNIT[bucket]}, at) AS start, "statusCode", SUM(requests)::bigint AS requests
      FROM (${union(
        seriesGrains,
        Prisma.sql`SELECT "bucketStart" AS at, "statusCode", "requestCount" AS requests FROM "UsageStatusRollup"`,
        Prisma.sql`SELECT "occurredAt" AS at, "statusCode", "requestCount"::bigint AS requests FROM "UsageLog"`,
      )}) AS rows
      GROUP BY 1, 2`,
    services.prisma.$queryRaw<Array<{ endpoint: string; method: HttpMethod; requests: bigint; errors: bigint }>>`
      SELECT endpoint, method::text AS method, SUM(requests)::bigint AS requests, SUM(errors)::bigint AS errors
      FROM (${union(
        endpointGrains,
        Prisma.sql`SELECT endpoint, method, "requestCount" AS requests, "errorRequests" AS errors FROM "UsageEndpointRollup"`,
        Prisma.sql`SELECT endpoint, method, "requestCount"::bigint AS requests, (CASE WHEN "statusCode" >= ${ERROR_STATUS_FROM} THEN "requestCount" ELSE 0 END)::bigint AS errors FROM "UsageLog"`,
      )}) AS rows
      GROUP BY 1, 2`,
  ]);

  let totalRequests = 0;
  let errorRequests = 0;
  const statusCounts = new Map<number, number>();
  const seriesCounts = new Map<number, { requestCount: number; errorRequests: number }>();
  for (const row of byStatus) {
    const requests = Number(row.requests);
    const errors = row.statusCode >= ERROR_STATUS_FROM ? requests : 0;
    totalRequests += requests;
    errorRequests += errors;
    statusCounts.set(row.statusCode, (statusCounts.get(row.statusCode) ?? 0) + requests);
    const start = toUtcDate(row.start).getTime();
    const point = seriesCounts.get(start) ?? { requestCount: 0, errorRequests: 0 };
    point.requestCount += requests;
    point.errorRequests += errors;
    seriesCounts.set(start, point);
  }
  const byStatusCode = [...statusCounts]
    .map(([statusCode, requestCount]) => ({ statusCode, requestCount }))
    .sort((a, b) => a.statusCode - b.statusCode);
  const byEndpoint = byEndpointRows
    .map((row) => ({ endpoint: row.endpoint, method: row.method, requestCount: Number(row.requests), errorRequests: Number(row.errors) }))
    .sort(
      (a, b) =>
        b.requestCount - a.requestCount || a.endpoint.localeCompare(b.endpoint) || a.method.localeCompare(b.method),
    );
  const series: UsageSummaryResult["series"] = [];
  for (let start = firstStart; start <= lastStart; start += size) {
    const point = seriesCounts.get(start);
    series.push({ bucketStart: new Date(start), requestCount: point?.requestCount ?? 0, errorRequests: point?.errorRequests ?? 0 });
  }
  return { from, to, bucket, totalRequests, errorRequests, byStatusCode, byEndpoint, series };
}

/** A `timestamp` (no zone) read back from PostgreSQL holds UTC wall time. */
function toUtcDate(value: Date | string): Date {
  if (value instanceof Date) return value;
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
}
