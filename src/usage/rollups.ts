import type { PrismaClient } from "../db/index.js";

/**
 * Recomputes these partners' rollups from their raw rows, in one transaction: for rows written
 * other than through ingest (demo data, a bulk load). Rows already deleted by retention are gone
 * from the recomputed sums, so it is not for partners whose old rows were trimmed.
 */
export async function rebuildUsageRollups(prisma: PrismaClient, partnerIds: readonly string[]): Promise<void> {
  const ids = [...partnerIds];
  // A large partner's rows take a while to sum; the default transaction timeout is seconds.
  await prisma.$transaction(async (tx) => {
    await tx.$executeRaw`DELETE FROM "UsageStatusRollup" WHERE "partnerId" = ANY(${ids}::text[])`;
    await tx.$executeRaw`DELETE FROM "UsageEndpointRollup" WHERE "partnerId" = ANY(${ids}::text[])`;
    await tx.$executeRaw`
      INSERT INTO "UsageStatusRollup" ("partnerId", grain, "bucketStart", "statusCode", "requestCount")
      SELECT l."partnerId", g.grain::"UsageGrain", date_trunc(g.unit, l."occurredAt"), l."statusCode", SUM(l."requestCount")
      FROM "UsageLog" l
      CROSS JOIN (VALUES ('MINUTE', 'minute'), ('HOUR', 'hour'), ('DAY', 'day')) AS g(grain, unit)
      WHERE l."partnerId" = ANY(${ids}::text[])
      GROUP BY 1, 2, 3, 4`;
    await tx.$executeRaw`
      INSERT INTO "UsageEndpointRollup" ("partnerId", grain, "bucketStart", endpoint, method, "requestCount", "errorRequests")
      SELECT l."partnerId", g.grain::"UsageGrain", date_trunc(g.unit, l."occurredAt"), l.endpoint, l.method,
             SUM(l."requestCount"), COALESCE(SUM(l."requestCount") FILTER (WHERE l."statusCode" >= 400), 0)
      FROM "UsageLog" l
      CROSS JOIN (VALUES ('MINUTE', 'minute'), ('HOUR', 'hour'), ('DAY', 'day')) AS g(grain, unit)
      WHERE l."partnerId" = ANY(${ids}::text[])
      GROUP BY 1, 2, 3, 4, 5`;
  }, { timeout: 60 * 60_000, maxWait: 60_000 });
}
