import { GraphQLLiveDirective, useLiveQuery, type UseLiveQueryOptions } from "@envelop/live-query";
import { InMemoryLiveQueryStore } from "@n1ru4l/in-memory-live-query-store";
import type { Plugin } from "graphql-yoga";
import { listen, type AppPubSub, type PubSubConnection } from "../../realtime/pubsub.js";

export { GraphQLLiveDirective };

/**
 * A `@live` query is re-run at most this often however many invalidations arrive (a flood of
 * ingested events costs each live query one execution per interval): this instance passes its
 * invalidations to the store at most once per interval, all keys of the interval together.
 */
export const LIVE_THROTTLE_MS = 1000;

export interface LiveQueries {
  /** Yoga plugin: executes `@live` queries through the store. */
  plugin: Plugin;
  close(): Promise<void>;
}

/**
 * The in-memory live-query store of this instance, fed by the pub/sub's `live:invalidate`
 * channel, so an invalidation published on one instance (over Redis) re-runs queries on all.
 */
export function createLiveQueries(options: {
  pubsub: AppPubSub;
  connection: Pick<PubSubConnection, "onStateChange">;
  /** Every root query field; all of them re-run when Redis returns, as invalidations may have been missed. */
  rootFields: readonly string[];
}): LiveQueries {
  const { pubsub } = options;
  const store = new InMemoryLiveQueryStore({
    // The store's own per-query throttle checks Date.now() inside a timer that can fire a little
    // early under load, and then drops the update for good; invalidations are throttled below
    // instead, so `@live(throttle:)` is ignored.
    validateThrottleValue: () => undefined,
  });
  const pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let lastFlushAt = -Infinity;
  const flush = () => {
    timer = undefined;
    lastFlushAt = performance.now();
    const keys = [...pending];
    pending.clear();
    void store.invalidate(keys);
  };
  const invalidate = (keys: readonly string[]) => {
    for (const key of keys) pending.add(key);
    // The first invalidation after a quiet interval goes through at once; later ones wait for
    // the interval to end and go together.
    timer ??= setTimeout(flush, Math.max(0, lastFlushAt + LIVE_THROTTLE_MS - performance.now()));
  };
  const invalidations = listen(pubsub, "live:invalidate", ({ keys }) => invalidate(keys));
  const stopWatching = options.connection.onStateChange((state) => {
    if (state === "connected") invalidate(options.rootFields.map((field) => `Query.${field}`));
  });
  return {
    // @envelop/live-query declares the store type of its own (older) copy; the API it uses is the same.
    plugin: useLiveQuery({ liveQueryStore: store as unknown as UseLiveQueryOptions["liveQueryStore"] }) as Plugin,
    async close() {
      clearTimeout(timer);
      stopWatching();
      await invalidations.stop();
    },
  };
}
