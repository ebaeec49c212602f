-- CreateEnum
CREATE TYPE "UsageGrain" AS ENUM ('MINUTE', 'HOUR', 'DAY');

-- CreateTable
CREATE TABLE "UsageStatusRollup" (
    "grain" "UsageGrain" NOT NULL,
    "bucketStart" TIMESTAMP(3) NOT NULL,
    "partnerId" TEXT NOT NULL,
    "statusCode" INTEGER NOT NULL,
    "requestCount" BIGINT NOT NULL,

    CONSTRAINT "UsageStatusRollup_pkey" PRIMARY KEY ("partnerId","grain","bucketStart","statusCode")
);

-- CreateTable
CREATE TABLE "UsageEndpointRollup" (
    "grain" "UsageGrain" NOT NULL,
    "bucketStart" TIMESTAMP(3) NOT NULL,
    "partnerId" TEXT NOT NULL,
    "endpoint" TEXT NOT NULL,
    "method" "HttpMethod" NOT NULL,
    "requestCount" BIGINT NOT NULL,
    "errorRequests" BIGINT NOT NULL,

    CONSTRAINT "UsageEndpointRollup_pkey" PRIMARY KEY ("partnerId","grain","bucketStart","endpoint","method")
);

-- CreateIndex
CREATE INDEX "UsageStatusRollup_grain_bucketStart_idx" ON "UsageStatusRollup"("grain", "bucketStart");

-- CreateIndex
CREATE INDEX "UsageEndpointRollup_grain_bucketStart_idx" ON "UsageEndpointRollup"("grain", "bucketStart");

-- AddForeignKey
ALTER TABLE "UsageStatusRollup" ADD CONSTRAINT "UsageStatusRollup_partnerId_fkey" FOREIGN KEY ("partnerId") REFERENCES "PartnerOrganization"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "UsageEndpointRollup" ADD CONSTRAINT "UsageEndpointRollup_partnerId_fkey" FOREIGN KEY ("partnerId") REFERENCES "PartnerOrganization"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Ingest adds to rollup rows in place: room on each page lets those updates stay heap-only (HOT).
-- A summary reads a few thousand rollup rows: starting parallel workers for that costs more
-- (tens of milliseconds on a busy machine) than the scan itself.
ALTER TABLE "UsageStatusRollup" SET (fillfactor = 70, parallel_workers = 0);
ALTER TABLE "UsageEndpointRollup" SET (fillfactor = 70, parallel_workers = 0);

-- Backfill: the rollups of every row already stored, at each grain.
INSERT INTO "UsageStatusRollup" ("partnerId", "grain", "bucketStart", "statusCode", "requestCount")
SELECT l."partnerId", g.grain::"UsageGrain", date_trunc(g.unit, l."occurredAt"), l."statusCode", SUM(l."requestCount")
FROM "UsageLog" l
CROSS JOIN (VALUES ('MINUTE', 'minute'), ('HOUR', 'hour'), ('DAY', 'day')) AS g(grain, unit)
GROUP BY 1, 2, 3, 4;

INSERT INTO "UsageEndpointRollup" ("partnerId", "grain", "bucketStart", "endpoint", "method", "requestCount", "errorRequests")
SELECT l."partnerId", g.grain::"UsageGrain", date_trunc(g.unit, l."occurredAt"), l."endpoint", l."method",
       SUM(l."requestCount"), COALESCE(SUM(l."requestCount") FILTER (WHERE l."statusCode" >= 400), 0)
FROM "UsageLog" l
CROSS JOIN (VALUES ('MINUTE', 'minute'), ('HOUR', 'hour'), ('DAY', 'day')) AS g(grain, unit)
GROUP BY 1, 2, 3, 4, 5;
