import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** How a GraphQL operation ended: no errors, only errors the client can act on, or an unexpected one. */
export type Outcome = "ok" | "client_error" | "error";

/**
 * Distinct operation names kept as label values. Names are chosen by clients; past this many,
 * new names are counted as "other" so that a client cannot grow the registry without bound.
 */
export const MAX_OPERATION_NAMES = 200;

/** Readings taken when metrics are scraped, from parts made after the metrics. */
export interface MetricSources {
  openWebSockets?: () => number;
  pubsubState?: () => string;
  pubsubPublishFailures?: () => number;
  databasePool?: () => { total: number; idle: number; waiting: number; max: number };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The server's Prometheus metrics in a registry of its own (several servers may share a process),
 * with Node's process metrics. Modules are given the counters they move; gauges of state kept
 * elsewhere read it at scrape time through `sources`.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const sources: MetricSources = {};

  const operationNames = new Set<string>();
  /** The label for an operation name, bounded (see MAX_OPERATION_NAMES). */
  const operationLabel = (name: string | null | undefined): string => {
    if (!name) return "anonymous";
    if (operationNames.has(name)) return name;
    if (operationNames.size >= MAX_OPERATION_NAMES) return "other";
    operationNames.add(name);
    return name;
  };

  const cacheLookups = new Counter({
    name: "api_key_cache_lookups_total",
    help: "API key verification cache lookups, by result (hit or miss)",
    labelNames: ["result"] as const,
    registers,
  });

  return {
    registry,
    sources,
    operationLabel,
    operations: new Counter({
      name: "graphql_operations_total",
      help: "GraphQL operations executed (HTTP, SSE and WebSocket), by operation name, type and outcome",
      labelNames: ["operation", "type", "outcome"] as const,
      registers,
    }),
    operationDuration: new Histogram({
      name: "graphql_operation_duration_seconds",
      help: "Time to execute a GraphQL operation (for subscriptions and live queries, to start it), by operation name, type and outcome",
      labelNames: ["operation", "type", "outcome"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    httpRequests: new Counter({
      name: "http_requests_total",
      help: "HTTP requests answered, by method and status code",
      labelNames: ["method", "status"] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "Time from receiving an HTTP request to the end of its response (SSE streams excluded)",
      labelNames: ["method"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    openWebSockets: new Gauge({
      name: "websocket_connections",
      help: "Open WebSocket connections",
      registers,
      collect() {
        this.set(sources.openWebSockets?.() ?? 0);
      },
    }),
    activeSubscriptions: new Gauge({
      name: "graphql_subscriptions_active",
      help: "GraphQL subscriptions running (over WebSockets and SSE)",
      registers,
    }),
    activeLiveQueries: new Gauge({
      name: "graphql_live_queries_active",
      help: "@live queries running",
      registers,
    }),
    streamedResults: new Counter({
      name: "graphql_stream_results_total",
      help: "Results sent to clients by subscriptions and live queries (events delivered), by operation name",
      labelNames: ["operation"] as const,
      registers,
    }),
    eventsPublished: new Counter({
      name: "pubsub_events_published_total",
      help: "Events published by this instance, by channel",
      labelNames: ["channel"] as const,
      registers,
    }),
    eventsReceived: new Counter({
      name: "pubsub_events_received_total",
      help: "Events received from other instances through Redis, by channel",
      labelNames: ["channel"] as const,
      registers,
    }),
    pubsubState: new Gauge({
      name: "pubsub_state",
      help: "The pub/sub's state: 1 for the current one of memory, connected, disconnected",
      labelNames: ["state"] as const,
      registers,
      collect() {
        const current = sources.pubsubState?.() ?? "memory";
        for (const state of ["memory", "connected", "disconnected"]) this.set({ state }, state === current ? 1 : 0);
      },
    }),
    pubsubPublishFailures: new Gauge({
      name: "pubsub_publish_failures",
      help: "Events that could not be handed to Redis since start (they reached this instance only)",
      registers,
      collect() {
        this.set(sources.pubsubPublishFailures?.() ?? 0);
      },
    }),
    usageEventsAccepted: new Counter({
      name: "usage_events_accepted_total",
      help: "Usage events stored by ingest (idempotent replays not counted again)",
      registers,
    }),
    usageEventsRejected: new Counter({
      name: "usage_events_rejected_total",
      help: "Usage events left out of accepted batches, by rejection code",
      labelNames: ["code"] as const,
      registers,
    }),
    keyVerifications: new Counter({
      name: "api_key_verifications_total",
      help: "API key verifications (verifyApiKey and ingest by secret), by answer code",
      labelNames: ["code"] as const,
      registers,
    }),
    cacheLookups,
    cacheHitRatio: new Gauge({
      name: "api_key_cache_hit_ratio",
      help: "Share of API key verification cache lookups answered from the cache since start",
      registers,
      async collect() {
        const { values } = await cacheLookups.get();
        const count = (result: string) => values.find((value) => value.labels.result === result)?.value ?? 0;
        const total = count("hit") + count("miss");
        this.set(total === 0 ? 0 : count("hit") / total);
      },
    }),
    responseCacheLookups: new Counter({
      name: "graphql_response_cache_lookups_total",
      help: "Queries looked up in the response cache, by result (hit: answered without running)",
      labelNames: ["result"] as const,
      registers,
    }),
    throttled: new Counter({
      name: "sign_in_throttled_total",
      help: "Sign-in and sign-up attempts refused by the throttle, by attempt (login, sign_up)",
      labelNames: ["attempt"] as const,
      registers,
    }),
    databasePool: new Gauge({
      name: "database_pool_connections",
      help: "Database pool connections, by state (busy, idle, waiting requests, max)",
      labelNames: ["state"] as const,
      registers,
      collect() {
        const pool = sources.databasePool?.();
        if (!pool) return;
        this.set({ state: "busy" }, pool.total - pool.idle);
        this.set({ state: "idle" }, pool.idle);
        this.set({ state: "waiting" }, pool.waiting);
        this.set({ state: "max" }, pool.max);
      },
    }),
  };
}
