import { Prisma, type PrismaClient } from "../db/index.js";
import type { HttpMethod } from "../generated/prisma/enums.js";
import { badInput } from "../errors.js";
import type { PartnerReach } from "./stream.js";

export type UsageBucket = "MINUTE" | "HOUR" | "DAY";

const BUCKET_MS: Record<UsageBucket, number> = { MINUTE: 60_000, HOUR: 3_600_000, DAY: 86_400_000 };
const BUCKET_UNIT: Record<UsageBucket, string> = { MINUTE: "minute", HOUR: "hour", DAY: "day" };
const BUCKET_INTERVAL: Record<UsageBucket, string> = { MINUTE: "1 minute", HOUR: "1 hour", DAY: "1 day" };

/** A series longer than this is refused: it bounds the rows one request makes PostgreSQL generate. */
export const MAX_SUMMARY_BUCKETS = 10_000;
export const DEFAULT_SUMMARY_WINDOW_MS = 24 * 3_600_000;
/** A request counts as an error when its status is 400 or above. */
export const ERROR_STATUS_FROM = 400;

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

/**
 * Totals over [from, to) in SQL: one grouping-sets query for the totals, status codes and
 * endpoints, one generate_series join for the buckets (UTC; empty ones answer zero).
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
  const size = BUCKET_MS[bucket];
  // Epoch-aligned buckets are UTC minutes, hours and days, as date_trunc on UTC timestamps makes them.
  const firstStart = Math.floor(from.getTime() / size) * size;
  const lastStart = Math.floor((to.getTime() - 1) / size) * size;
  const buckets = (lastStart - firstStart) / size + 1;
  if (buckets > MAX_SUMMARY_BUCKETS) {
    throw badInput(`The window holds ${buckets} ${bucket} buckets; at most ${MAX_SUMMARY_BUCKETS} are allowed`, {
      maxBuckets: MAX_SUMMARY_BUCKETS,
    });
  }

  const conditions: Prisma.Sql[] = [
    Prisma.sql`"occurredAt" >= ${from.toISOString()}::timestamp(3)`,
    Prisma.sql`"occurredAt" < ${to.toISOString()}::timestamp(3)`,
  ];
  if (scope.readable !== "all") conditions.push(Prisma.sql`"partnerId" = ANY(${[...scope.readable]}::text[])`);
  if (scope.partnerId) conditions.push(Prisma.sql`"partnerId" = ${scope.partnerId}`);
  if (scope.apiKeyId) conditions.push(Prisma.sql`"apiKeyId" = ${scope.apiKeyId}`);
  const where = Prisma.join(conditions, " AND ");
  const isError = Prisma.sql`CASE WHEN "statusCode" >= ${ERROR_STATUS_FROM} THEN "requestCount" ELSE 0 END`;
  const unit = BUCKET_UNIT[bucket];

  const [groups, series] = await Promise.all([
    services.prisma.$queryRaw<
      Array<{
        statusCode: number | null;
        endpoint: string | null;
        method: HttpMethod | null;
        byStatus: number;
        byEndpoint: number;
        requests: bigint;
        errors: bigint;
      }>
    >`
      SELECT "statusCode", endpoint, method::text AS method,
             GROUPING("statusCode") AS "byStatus", GROUPING(endpoint, method) AS "byEndpoint",
             SUM("requestCount")::bigint AS requests, SUM(${isError})::bigint AS errors
      FROM "UsageLog"
      WHERE ${where}
      GROUP BY GROUPING SETS ((), ("statusCode"), (endpoint, method))`,
    services.prisma.$queryRaw<Array<{ bucketStart: Date; requests: bigint; errors: bigint }>>`
      WITH counts AS (
        SELECT date_trunc(${unit}, "occurredAt") AS start,
               SUM("requestCount")::bigint AS requests, SUM(${isError})::bigint AS errors
        FROM "UsageLog"
        WHERE ${where}
        GROUP BY 1
      )
      SELECT b.start AS "bucketStart", COALESCE(c.requests, 0)::bigint AS requests, COALESCE(c.errors, 0)::bigint AS errors
      FROM generate_series(${new Date(firstStart).toISOString()}::timestamp(3),
                           ${new Date(lastStart).toISOString()}::timestamp(3),
                           ${BUCKET_INTERVAL[bucket]}::interval) AS b(start)
      LEFT JOIN counts c ON c.start = b.start
      ORDER BY b.start`,
  ]);

  let totalRequests = 0;
  let errorRequests = 0;
  const byStatusCode: UsageSummaryResult["byStatusCode"] = [];
  const byEndpoint: UsageSummaryResult["byEndpoint"] = [];
  for (const row of groups) {
    const requestCount = Number(row.requests ?? 0);
    const errors = Number(row.errors ?? 0);
    if (Number(row.byStatus) === 1 && Number(row.byEndpoint) !== 0) {
      totalRequests = requestCount;
      errorRequests = errors;
    } else if (Number(row.byStatus) === 0) {
      byStatusCode.push({ statusCode: row.statusCode!, requestCount });
    } else {
      byEndpoint.push({ endpoint: row.endpoint!, method: row.method!, requestCount, errorRequests: errors });
    }
  }
  byStatusCode.sort((a, b) => a.statusCode - b.statusCode);
  byEndpoint.sort(
    (a, b) =>
      b.requestCount - a.requestCount || a.endpoint.localeCompare(b.endpoint) || a.method.localeCompare(b.method),
  );
  return {
    from,
    to,
    bucket,
    totalRequests,
    errorRequests,
    byStatusCode,
    byEndpoint,
    series: series.map((row) => ({
      bucketStart: toUtcDate(row.bucketStart),
      requestCount: Number(row.requests),
      errorRequests: Number(row.errors),
    })),
  };
}

/** A `timestamp` (no zone) read back from PostgreSQL holds UTC wall time. */
function toUtcDate(value: Date | string): Date {
  if (value instanceof Date) return value;
  return new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
}
