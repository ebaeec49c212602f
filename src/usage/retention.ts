import type { PrismaClient } from "../db/index.js";
import type { DataChanges } from "../realtime/changes.js";

/** Raw rows deleted per statement: each holds its row locks for milliseconds, so ingest never waits long. */
export const RETENTION_BATCH_ROWS = 1000;
/** How often the expired rows are looked for. */
export const RETENTION_INTERVAL_MS = 10 * 60_000;

export interface UsageRetention {
  /** Deletes raw usage rows older than the retention period, a batch at a time; answers how many. */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

/**
 * With `days`, raw UsageLog rows whose occurredAt is older than that are deleted on a timer, in
 * small batches each committed on its own. The rollups are left alone, so partner summaries keep
 * their totals; usageLogs and a key's summary only see the rows kept. Without `days`, nothing is
 * deleted.
 */
export function createUsageRetention(deps: {
  prisma: PrismaClient;
  days: number | undefined;
  now: () => Date;
  batchRows?: number;
  changes?: DataChanges;
}): UsageRetention {
  const { prisma, days } = deps;
  const batchRows = deps.batchRows ?? RETENTION_BATCH_ROWS;
  let closed = false;
  let running: Promise<number> | undefined;

  async function deleteExpired(): Promise<number> {
    if (days === undefined) return 0;
    const cutoff = new Date(deps.now().getTime() - days * 86_400_000).toISOString();
    let total = 0;
    try {
      while (!closed) {
        // SKIP LOCKED: rows another instance's sweep holds are left to it, so sweeps never queue.
        const deleted = await prisma.$executeRaw`
          DELETE FROM "UsageLog" WHERE id IN (
            SELECT id FROM "UsageLog"
            WHERE "occurredAt" < ${cutoff}::timestamp(3)
            ORDER BY "occurredAt" DESC, id DESC
            LIMIT ${batchRows}
            FOR UPDATE SKIP LOCKED)`;
        total += deleted;
        if (deleted < batchRows) break;
      }
    } finally {
      // Each statement committed on its own: what was deleted stays deleted, even if a later one failed.
      if (total > 0) await deps.changes?.changed();
    }
    return total;
  }

  const sweep = () => {
    running ??= deleteExpired().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer =
    days === undefined
      ? undefined
      : setInterval(() => {
          sweep().catch(() => {
            // A failed sweep (database away) is retried at the next tick; the rows stay until then.
          });
        }, RETENTION_INTERVAL_MS);
  timer?.unref();
  if (days !== undefined) void sweep().catch(() => {});

  return {
    sweep,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
