import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { PrismaClient } from "../db/index.js";
import type { DataChanges } from "../realtime/changes.js";
import type { AppPubSub, PubSubConnection } from "../realtime/pubsub.js";
import { ingestUsage, type IngestResult, type UsageEvent } from "./ingest.js";
import { createUsageRetention } from "./retention.js";
import { createUsageStreams, type UsageStreamFilter } from "./stream.js";
import { summarizeUsage, type UsageScope, type UsageSummaryResult, type UsageWindow } from "./summary.js";

/** Usage: what the gateway reports, the totals read back, and the live stream of new rows. */
export interface UsageOperations {
  /** Stores a batch of the gateway's events (see ingest.ts); `submittedBy` scopes idempotency keys. */
  record(submittedBy: string, events: readonly UsageEvent[], idempotencyKey?: string | null): Promise<IngestResult>;
  summarize(scope: UsageScope, window: UsageWindow): Promise<UsageSummaryResult>;
  /** Deletes raw rows past the retention period now (the timer does it too); answers how many. */
  sweepExpired(): Promise<number>;
  stream: ReturnType<typeof createUsageStreams>["stream"];
  close(): Promise<void>;
}

export function createUsage(deps: {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "verify" | "keyStates">;
  pubsub: AppPubSub;
  /** Live streams end when it changes state (they may have missed events meanwhile). */
  connection?: Pick<PubSubConnection, "onStateChange">;
  hashKey: Uint8Array;
  now: () => Date;
  /** Raw rows older than this many days are deleted; undefined keeps everything. */
  retentionDays?: number;
  onStored?: (result: IngestResult) => void;
  /** Told of every change to usage after commit (ingest, retention): cached query answers showing it are dropped. */
  changes?: DataChanges;
}): UsageOperations {
  const streams = createUsageStreams(deps);
  const retention = createUsageRetention({ prisma: deps.prisma, days: deps.retentionDays, now: deps.now, changes: deps.changes });
  return {
    record: (submittedBy, events, idempotencyKey) => ingestUsage(deps, submittedBy, events, idempotencyKey),
    summarize: (scope, window) => summarizeUsage(deps, scope, window),
    stream: (filter: UsageStreamFilter) => streams.stream(filter),
    sweepExpired: () => retention.sweep(),
    close: async () => {
      await Promise.all([retention.close(), streams.close()]);
    },
  };
}
