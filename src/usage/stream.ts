import type { PrismaClient } from "../db/index.js";
import { clientError } from "../errors.js";
import type { Prisma, UsageLog } from "../generated/prisma/client.js";
import { batchedSource, type Batch, type BatchedSource } from "../realtime/batches.js";
import {
  listen,
  type AppPubSub,
  type PubSubConnection,
  type UsageCreatedPayload,
  type UsageLogMessage,
} from "../realtime/pubsub.js";

/** Rows a replay reads per statement; each page is one batch, read once the previous one was taken. */
export const REPLAY_PAGE_ROWS = 500;
/**
 * A row published live may also have been read by a replay that ran between its commit and its
 * message. Replayed rows created this long before the stream began are remembered, and the same
 * rows arriving live are skipped (covers the time from insert to publish, and clock skew).
 */
const SEAM_MS = 60_000;

/** Partners whose usage a reader may see: every one, or those listed (possibly none). */
export type PartnerReach = "all" | readonly string[];

/** A position in arrival order: the row's createdAt, then its id. */
export interface StreamPosition {
  time: Date;
  id: string;
}

export interface UsageStreamFilter {
  readable: PartnerReach;
  partnerId?: string;
  apiKeyId?: string;
  /** Replay the readable rows after this position from the database first, then continue live. */
  after?: StreamPosition | null;
  /**
   * Whether subscribers with the same filter may share one stream and its results (what they
   * select depends on nothing but the filter). A replaying stream is never shared.
   */
  shareable?: boolean;
}

export interface UsageStreams {
  /**
   * Usage logs matching the filter, in batches: the replay (if any), then one batch per recorded
   * batch. Within a batch, rows come in arrival order (createdAt, then id).
   */
  stream(filter: UsageStreamFilter): BatchedSource<UsageLog>;
  close(): Promise<void>;
}

// A message reaches every stream as the same object; its rows are made once and shared. Ingest
// publishes a batch's rows in arrival order (their ids rise with their place in the batch).
const rowsOf = new WeakMap<UsageCreatedPayload, UsageLog[]>();

/**
 * The instance's usage streams: one pub/sub subscription, held from the start and shared by all
 * of them, so a thousand dashboards are one Redis channel listener and one JSON parse per message,
 * and a stream's first reader never starts a replay before the channel is subscribed.
 *
 * While Redis is away an instance hears only its own events, and once it is back it has missed
 * the others' for good. So every stream ends at each change of the pub/sub's state with
 * EVENTS_DROPPED (`reason: "PUBSUB_INTERRUPTED"`): a client subscribes again with the last cursor
 * it received, and the replay reads what the outage kept from it.
 */
export function createUsageStreams(deps: {
  pubsub: AppPubSub;
  prisma: PrismaClient;
  now: () => Date;
  connection?: Pick<PubSubConnection, "onStateChange">;
}): UsageStreams {
  const listeners = new Set<(rows: UsageLog[]) => void>();
  const interrupters = new Set<() => void>();
  const source = listen(deps.pubsub, "usage:created", (payload) => {
    if (listeners.size === 0) return;
    const rows = rowsFrom(payload);
    for (const each of listeners) each(rows);
  });
  const stopWatching = deps.connection?.onStateChange(() => {
    for (const interrupt of interrupters) interrupt();
  });

  function subscribe(listener: (rows: UsageLog[]) => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  return {
    stream(filter) {
      const wanted = (log: UsageLog) =>
        (filter.readable === "all" || filter.readable.includes(log.partnerId)) &&
        (filter.partnerId === undefined || filter.partnerId === log.partnerId) &&
        (filter.apiKeyId === undefined || filter.apiKeyId === log.apiKeyId);
      const shareKey =
        filter.shareable && !filter.after
          ? JSON.stringify([filter.readable === "all" ? "all" : [...filter.readable].sort(), filter.partnerId ?? null, filter.apiKeyId ?? null])
          : null;

      return batchedSource(shareKey, async function* (signal) {
        // The clock ingest stamps createdAt with.
        const startedAt = deps.now().getTime();
        // Subscribed before the replay reads anything, so a row committed during it arrives here.
        const live: UsageLog[][] = [];
        let wake: (() => void) | null = null;
        const aborted = () => wake?.();
        signal?.addEventListener("abort", aborted);
        const unsubscribe = subscribe((rows) => {
          const mine = rows.filter(wanted);
          if (mine.length === 0) return;
          live.push(mine);
          wake?.();
        });
        let interrupted = false;
        const interrupt = () => {
          interrupted = true;
          wake?.();
        };
        interrupters.add(interrupt);
        try {
          const seam = new Set<string>();
          if (filter.after) {
            let position = filter.after;
            for (;;) {
              const page = await deps.prisma.usageLog.findMany({
                where: { AND: [replayWhere(filter), after(position)] },
                orderBy: [{ createdAt: "asc" }, { id: "asc" }],
                take: REPLAY_PAGE_ROWS,
              });
              if (page.length === 0) break;
              for (const row of page) if (row.createdAt.getTime() >= startedAt - SEAM_MS) seam.add(row.id);
              yield { items: page, replayed: true } satisfies Batch<UsageLog>;
              const last = page.at(-1)!;
              position = { time: last.createdAt, id: last.id };
              if (page.length < REPLAY_PAGE_ROWS) break;
            }
          }
          while (!signal?.aborted) {
            if (interrupted) throw pubsubInterrupted();
            while (live.length > 0) {
              const rows = seam.size === 0 ? live.shift()! : live.shift()!.filter((row) => !seam.has(row.id));
              if (rows.length > 0) yield { items: rows, replayed: false };
            }
            if (signal?.aborted) break;
            // Either may have come while a batch was being taken.
            if (interrupted || live.length > 0) continue;
            await new Promise<void>((resolve) => (wake = resolve));
            wake = null;
          }
        } finally {
          signal?.removeEventListener("abort", aborted);
          interrupters.delete(interrupt);
          unsubscribe();
        }
      });
    },
    async close() {
      listeners.clear();
      interrupters.clear();
      stopWatching?.();
      await source.stop();
    },
  };
}

function replayWhere(filter: UsageStreamFilter): Prisma.UsageLogWhereInput {
  const conditions: Prisma.UsageLogWhereInput[] = [];
  if (filter.readable !== "all") conditions.push({ partnerId: { in: [...filter.readable] } });
  if (filter.partnerId !== undefined) conditions.push({ partnerId: filter.partnerId });
  if (filter.apiKeyId !== undefined) conditions.push({ apiKeyId: filter.apiKeyId });
  return { AND: conditions };
}

const after = (position: StreamPosition): Prisma.UsageLogWhereInput => ({
  OR: [{ createdAt: { gt: position.time } }, { createdAt: position.time, id: { gt: position.id } }],
});

function rowsFrom(payload: UsageCreatedPayload): UsageLog[] {
  let rows = rowsOf.get(payload);
  if (!rows) {
    rows = payload.logs.map(toRow);
    rowsOf.set(payload, rows);
  }
  return rows;
}

function toRow(log: UsageLogMessage): UsageLog {
  return { ...log, occurredAt: new Date(log.occurredAt), createdAt: new Date(log.createdAt), updatedAt: new Date(log.updatedAt) };
}

/** Ends a stream that may have missed events while the pub/sub changed state (see above). */
function pubsubInterrupted() {
  return clientError(
    "EVENTS_DROPPED",
    "The event bus between instances was interrupted, so events may have been missed and the stream ended. " +
      "Subscribe again with `after` set to the last cursor received to catch up.",
    { reason: "PUBSUB_INTERRUPTED" },
  );
}
