import { Repeater, SlidingBuffer } from "graphql-yoga";
import type { UsageLog } from "../generated/prisma/client.js";
import { listen, type AppPubSub, type UsageCreatedPayload, type UsageLogMessage } from "../realtime/pubsub.js";

/**
 * Events held for one subscriber that is not reading. Past this the oldest are dropped, so a
 * stalled dashboard costs bounded memory and never holds up the publisher or other subscribers;
 * one that falls this far behind has to re-read usageLogs anyway.
 */
export const SUBSCRIBER_BUFFER_EVENTS = 1000;

/** Partners whose usage a reader may see: every one, or those listed (possibly none). */
export type PartnerReach = "all" | readonly string[];

export interface UsageStreamFilter {
  readable: PartnerReach;
  partnerId?: string;
  apiKeyId?: string;
}

// A message reaches every subscriber as the same object; its rows are made once and shared.
const rowsOf = new WeakMap<UsageLogMessage, UsageLog>();

export interface UsageStreams {
  /** New usage logs matching the filter, as rows, through a bounded per-subscriber buffer. */
  stream(filter: UsageStreamFilter): AsyncIterable<UsageLog>;
  close(): Promise<void>;
}

/**
 * The instance's usage streams: one pub/sub subscription, held while any subscriber listens and
 * shared by all of them, so a thousand dashboards are one Redis channel listener and one JSON
 * parse per message.
 */
export function createUsageStreams(pubsub: AppPubSub): UsageStreams {
  const listeners = new Set<(payload: UsageCreatedPayload) => void>();
  let source: { stop(): Promise<void> } | null = null;

  function subscribe(listener: (payload: UsageCreatedPayload) => void): () => void {
    listeners.add(listener);
    source ??= listen(pubsub, "usage:created", (payload) => {
      for (const each of listeners) each(payload);
    });
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && source) {
        void source.stop();
        source = null;
      }
    };
  }

  return {
    stream(filter) {
      const wanted = (log: UsageLogMessage) =>
        (filter.readable === "all" || filter.readable.includes(log.partnerId)) &&
        (filter.partnerId === undefined || filter.partnerId === log.partnerId) &&
        (filter.apiKeyId === undefined || filter.apiKeyId === log.apiKeyId);
      return new Repeater<UsageLog>((push, stop) => {
        // A push into the sliding buffer never waits for the reader, so no subscriber holds up another.
        const unsubscribe = subscribe(({ logs }) => {
          for (const log of logs) if (wanted(log)) void push(toRow(log));
        });
        void stop.then(unsubscribe);
      }, new SlidingBuffer(SUBSCRIBER_BUFFER_EVENTS));
    },
    async close() {
      listeners.clear();
      await source?.stop();
      source = null;
    },
  };
}

function toRow(log: UsageLogMessage): UsageLog {
  let row = rowsOf.get(log);
  if (!row) {
    row = { ...log, occurredAt: new Date(log.occurredAt), createdAt: new Date(log.createdAt), updatedAt: new Date(log.updatedAt) };
    rowsOf.set(log, row);
  }
  return row;
}
