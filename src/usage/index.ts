import type { ApiKeyVerifier } from "../auth/api-key-verifier.js";
import type { PrismaClient } from "../db/index.js";
import type { AppPubSub } from "../realtime/pubsub.js";
import { ingestUsage, type IngestResult, type UsageEvent } from "./ingest.js";
import { createUsageStreams, type UsageStreamFilter } from "./stream.js";
import { summarizeUsage, type UsageScope, type UsageSummaryResult, type UsageWindow } from "./summary.js";

/** Usage: what the gateway reports, the totals read back, and the live stream of new rows. */
export interface UsageOperations {
  /** Stores a batch of the gateway's events (see ingest.ts); `submittedBy` scopes idempotency keys. */
  record(submittedBy: string, events: readonly UsageEvent[], idempotencyKey?: string | null): Promise<IngestResult>;
  summarize(scope: UsageScope, window: UsageWindow): Promise<UsageSummaryResult>;
  stream: ReturnType<typeof createUsageStreams>["stream"];
  close(): Promise<void>;
}

export function createUsage(deps: {
  prisma: PrismaClient;
  verifier: Pick<ApiKeyVerifier, "verify">;
  pubsub: AppPubSub;
  hashKey: Uint8Array;
  now: () => Date;
  onStored?: (result: IngestResult) => void;
}): UsageOperations {
  const streams = createUsageStreams(deps);
  return {
    record: (submittedBy, events, idempotencyKey) => ingestUsage(deps, submittedBy, events, idempotencyKey),
    summarize: (scope, window) => summarizeUsage(deps, scope, window),
    stream: (filter: UsageStreamFilter) => streams.stream(filter),
    close: () => streams.close(),
  };
}
