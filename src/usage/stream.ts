import { Repeater, SlidingBuffer } from "graphql-yoga";
import type { UsageLog } from "../generated/prisma/client.js";
import type { AppPubSub, UsageCreatedPayload, UsageLogMessage } from "../realtime/pubsub.js";

/**
 * Events held for one subscriber that is not reading. Past this the oldest are dropped, so a
 * stalled dashboard costs bounded memory and never holds up the publisher or other subscribers;
 * one that falls this far behind has to re-read usageLogs anyway.
 */
export const SUBSCRIBER_BUFFER_EVENTS = 1000;

export interface UsageStreamFilter {
  /** The partner whose events this subscriber may read; undefined for all (staff). */
  readablePartnerId: string | undefined;
  partnerId?: string;
  apiKeyId?: string;
}

// A message reaches every subscriber as the same object; its rows are made once and shared.
const rowsOf = new WeakMap<UsageLogMessage, UsageLog>();

type Listener = (payload: UsageCreatedPayload) => void;
interface Hub {
  listeners: Set<Listener>;
  source: AsyncIterator<UsageCreatedPayload> | null;
}
const hubs = new WeakMap<AppPubSub, Hub>();

/**
 * One pub/sub subscription per instance, shared by its subscribers while any is listening, so
 * a thousand dashboards are one Redis channel listener and one JSON parse per message.
 */
function listen(pubsub: AppPubSub, listener: Listener): () => void {
  let hub = hubs.get(pubsub);
  if (!hub) hubs.set(pubsub, (hub = { listeners: new Set(), source: null }));
  const shared = hub;
  shared.listeners.add(listener);
  if (!shared.source) {
    const source = pubsub.subscribe("usage:created")[Symbol.asyncIterator]();
    shared.source = source;
    void (async () => {
      for (let step = await source.next(); !step.done; step = await source.next()) {
        for (const each of shared.listeners) each(step.value);
      }
    })();
  }
  return () => {
    shared.listeners.delete(listener);
    if (shared.listeners.size === 0 && shared.source) {
      void shared.source.return?.();
      shared.source = null;
    }
  };
}

/** New usage logs matching the filter, as rows, through a bounded per-subscriber buffer. */
export function usageLogStream(pubsub: AppPubSub, filter: UsageStreamFilter): AsyncIterable<UsageLog> {
  const wanted = (log: UsageLogMessage) =>
    (filter.readablePartnerId === undefined || filter.readablePartnerId === log.partnerId) &&
    (filter.partnerId === undefined || filter.partnerId === log.partnerId) &&
    (filter.apiKeyId === undefined || filter.apiKeyId === log.apiKeyId);
  return new Repeater<UsageLog>((push, stop) => {
    // A push into the sliding buffer never waits for the reader, so no subscriber holds up another.
    const stopListening = listen(pubsub, ({ logs }) => {
      for (const log of logs) if (wanted(log)) void push(toRow(log));
    });
    void stop.then(stopListening);
  }, new SlidingBuffer(SUBSCRIBER_BUFFER_EVENTS));
}

function toRow(log: UsageLogMessage): UsageLog {
  let row = rowsOf.get(log);
  if (!row) {
    row = { ...log, occurredAt: new Date(log.occurredAt), createdAt: new Date(log.createdAt), updatedAt: new Date(log.updatedAt) };
    rowsOf.set(log, row);
  }
  return row;
}
