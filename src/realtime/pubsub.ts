import { randomUUID } from "node:crypto";
import type { TypedEventTarget } from "@graphql-yoga/typed-event-target";
import { createPubSub, type PubSub, type Repeater, type YogaLogger } from "graphql-yoga";
import { Redis } from "ioredis";
import type { HttpMethod } from "../generated/prisma/enums.js";

/**
 * Every channel the server uses, with what flows through it. Each is published to by the module
 * named in its comment and subscribed to where that state matters.
 */
export type PubSubChannels = {
  /** auth: a session ended (logout); every instance closes that session's WebSockets. */
  "session:revoked": [payload: { sessionId: string }];
  /**
   * auth/service-credentials: a credential was revoked; every instance drops its cached trust and
   * ends the credential's streams and WebSockets.
   */
  "serviceCredential:revoked": [payload: { credentialId: string }];
  /**
   * auth/api-key-verifier: a key was rotated or revoked (apiKeyId), or a partner's status changed
   * (partnerId); every instance drops those keys from its verification cache.
   */
  "apiKey:invalidated": [payload: { apiKeyId: string | null; partnerId: string | null }];
  /** usage/ingest (recordUsage): a batch's accepted events, after commit; usageLogCreated streams them. */
  "usage:created": [payload: UsageCreatedPayload];
  /** realtime/live-queries (invalidateLive): resource identifiers whose `@live` queries re-run. */
  "live:invalidate": [payload: { keys: string[] }];
  /**
   * http/response-cache (changed): data changed, of these partners only or (null) of anyone;
   * every instance stops answering from cached responses that could show it.
   */
  "responses:changed": [payload: { partnerIds: string[] | null }];
};

/** A stored UsageLog row as it travels between instances (JSON, so dates are ISO strings). */
export interface UsageLogMessage {
  id: string;
  partnerId: string;
  apiKeyId: string;
  endpoint: string;
  method: HttpMethod;
  statusCode: number;
  requestCount: number;
  occurredAt: string;
  createdAt: string;
  updatedAt: string;
}

/** One message per ingested batch (not per event or partner), so a flood stays a few messages. */
export interface UsageCreatedPayload {
  logs: UsageLogMessage[];
}

export type AppPubSub = PubSub<PubSubChannels>;

/**
 * `memory`: no Redis, events stay in this process. `connected`: both Redis connections are up and
 * every channel a subscriber listens to is subscribed. `disconnected`: Redis is unreachable;
 * events still reach this instance's own subscribers, other instances miss them.
 */
export type PubSubState = "memory" | "connected" | "disconnected";

/** How the pub/sub stands, for readiness, logs, and modules that resynchronise after an outage. */
export interface PubSubConnection {
  readonly state: PubSubState;
  /** Messages that could not be handed to Redis since start (each one is also logged). */
  readonly publishFailures: number;
  /** Calls back on every change of state; answers a function that stops calling back. */
  onStateChange(listener: (state: PubSubState) => void): () => void;
  /**
   * Resolves once every message published so far has been taken by Redis and, on a channel this
   * instance listens to, has come back to it (Redis writes a message to all subscribers together),
   * or has failed; at once in memory.
   */
  delivered(): Promise<void>;
}

export interface PubSubHandle {
  pubsub: AppPubSub;
  connection: PubSubConnection;
  /** Waits for messages already handed over, then closes the connections. */
  close(): Promise<void>;
}

export interface PubSubOptions {
  redisUrl?: string;
  channelPrefix: string;
  logger?: YogaLogger;
  /** Told of every event this instance publishes, and of every one received from another (metrics). */
  observe?: { published(channel: string): void; received(channel: string): void };
}

/**
 * In memory by default; over Redis when a URL is given, so events reach every instance. Channel
 * names are prefixed so that several deployments (or test runs) can share one Redis.
 *
 * Redis is best-effort: an event always reaches this instance's subscribers directly, and reaches
 * the others through Redis when it is up. Publishing never throws into the caller, a lost
 * connection is retried for ever, and once it is back every channel is subscribed again.
 */
/**
 * Resolves true once the connection is in that state, or false after `timeoutMs` (then it is not).
 * The server waits this way for Redis at start, so what listens from the start is subscribed.
 */
export function reachState(connection: PubSubConnection, wanted: PubSubState, timeoutMs: number): Promise<boolean> {
  if (connection.state === wanted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop();
      resolve(false);
    }, timeoutMs);
    const stop = connection.onStateChange((state) => {
      if (state !== wanted) return;
      clearTimeout(timer);
      stop();
      resolve(true);
    });
  });
}

export function createAppPubSub(options: PubSubOptions): PubSubHandle {
  if (!options.redisUrl) {
    const connection: PubSubConnection = {
      state: "memory",
      publishFailures: 0,
      onStateChange: () => () => {},
      delivered: async () => {},
    };
    return { pubsub: withLogger(observed(createPubSub<PubSubChannels>(), options.observe), options.logger), connection, close: async () => {} };
  }
  const bridge = createRedisBridge(options.redisUrl, options.channelPrefix, options.logger, options.observe);
  return {
    pubsub: withLogger(observed(createPubSub<PubSubChannels>({ eventTarget: bridge.eventTarget }), options.observe), options.logger),
    connection: bridge.connection,
    close: bridge.close,
  };
}

/** The logger a pub/sub was made with, for `listen` to report failing handlers to. */
const loggers = new WeakMap<AppPubSub, YogaLogger>();

function withLogger(pubsub: AppPubSub, logger: YogaLogger | undefined): AppPubSub {
  if (logger) loggers.set(pubsub, logger);
  return pubsub;
}

function observed(pubsub: AppPubSub, observe: PubSubOptions["observe"]): AppPubSub {
  if (!observe) return pubsub;
  return {
    ...pubsub,
    publish: (channel, ...args) => {
      observe.published(String(channel));
      pubsub.publish(channel, ...args);
    },
  };
}

/**
 * Runs `handle` for every message on a channel until `stop()`: the one way the server listens to
 * a channel. A failing handler is logged (to `logger`, the pub/sub's own, or standard error) and never ends the
 * listening, nor the process.
 */
export function listen<K extends keyof PubSubChannels>(
  pubsub: AppPubSub,
  channel: K,
  handle: (payload: PubSubChannels[K][0]) => void | Promise<void>,
  logger?: YogaLogger,
): { stop(): Promise<void> } {
  // Every channel carries one payload and no routing id, which the generic signature cannot see.
  const subscribe = pubsub.subscribe as (channel: K) => Repeater<PubSubChannels[K][0]>;
  const messages = subscribe(channel);
  const running = (async () => {
    for await (const payload of messages) {
      try {
        await handle(payload);
      } catch (error) {
        (logger ?? loggers.get(pubsub) ?? console).error(`pub/sub: handling a ${String(channel)} message failed`, error);
      }
    }
  })();
  return {
    async stop() {
      await messages.return?.();
      await running.catch(() => {});
    },
  };
}

/** A message as it travels through Redis: who sent it, so an instance skips its own echo. */
interface Envelope {
  origin: string;
  /** Numbers this instance's messages, so it can tell when one has come back to it. */
  seq: number;
  detail: unknown;
}

/** How long `delivered()` waits for a message to come back before giving up on it. */
const ECHO_WAIT_MS = 1000;

function createRedisBridge(redisUrl: string, prefix: string, logger?: YogaLogger, observe?: PubSubOptions["observe"]) {
  const origin = randomUUID();
  const local = new EventTarget();
  const listeners = new Map<string, Set<EventListenerOrEventListenerObject>>();
  const redisOptions = {
    // A command issued while Redis is away waits through one reconnection attempt, then fails (and
    // is counted): requests never wait on Redis, and nothing queues up without bound.
    maxRetriesPerRequest: 1,
    // Resubscribing is done below on every 'ready', with its failure handled.
    autoResubscribe: false,
  };
  const publishClient = new Redis(redisUrl, redisOptions);
  const subscribeClient = new Redis(redisUrl, redisOptions);

  let state: PubSubState = "disconnected";
  let publisherReady = false;
  let subscriberReady = false;
  let publishFailures = 0;
  let lastError: string | null = null;
  const stateListeners = new Set<(state: PubSubState) => void>();
  const pending = new Set<Promise<unknown>>();
  let sequence = 0;
  // Messages on channels this instance listens to, until Redis has sent them back to it.
  const echoes = new Map<number, () => void>();
  let closing = false;

  const update = () => {
    if (closing) return;
    const next: PubSubState = publisherReady && subscriberReady ? "connected" : "disconnected";
    if (next === state) return;
    state = next;
    if (next === "connected") logger?.info("pub/sub: connected to Redis");
    else logger?.warn(`pub/sub: lost Redis (${lastError ?? "connection closed"}); events reach this instance only`);
    for (const listener of stateListeners) listener(next);
  };

  for (const client of [publishClient, subscribeClient]) {
    // Without a listener, ioredis reports every failed reconnection attempt as an unhandled error.
    client.on("error", (error: Error) => {
      lastError = error.message;
      logger?.debug(`pub/sub: Redis error: ${error.message}`);
    });
  }

  publishClient.on("ready", () => {
    publisherReady = true;
    update();
  });
  publishClient.on("close", () => {
    publisherReady = false;
    update();
  });

  // Bumped on every close, so a resubscription that finishes after the next outage began is ignored.
  let generation = 0;
  subscribeClient.on("ready", () => {
    const current = generation;
    const channels = [...listeners.keys()].map((type) => prefix + type);
    const subscribed = channels.length > 0 ? subscribeClient.subscribe(...channels) : Promise.resolve();
    subscribed.then(
      () => {
        if (current !== generation) return;
        subscriberReady = true;
        update();
      },
      (error: Error) => logger?.warn(`pub/sub: resubscribing failed (${error.message}); retried on reconnection`),
    );
  });
  subscribeClient.on("close", () => {
    generation++;
    subscriberReady = false;
    update();
  });

  subscribeClient.on("message", (channel: string, message: string) => {
    if (!channel.startsWith(prefix)) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch {
      logger?.warn(`pub/sub: ignored a message on ${channel} that is not JSON`);
      return;
    }
    if (envelope.origin === origin) {
      echoes.get(envelope.seq)?.();
      return;
    }
    observe?.received(channel.slice(prefix.length));
    local.dispatchEvent(new CustomEvent(channel.slice(prefix.length), { detail: envelope.detail }));
  });

  // Subscribing and unsubscribing are best-effort too: whatever fails is redone on the next 'ready'.
  const ignoreUntilReady = (error: Error) => logger?.debug(`pub/sub: (un)subscribe deferred: ${error.message}`);

  const eventTarget: TypedEventTarget<CustomEvent> = {
    addEventListener(type, listener, opts) {
      if (!listener) return;
      local.addEventListener(type, listener as EventListenerOrEventListenerObject, opts);
      let own = listeners.get(type);
      if (!own) {
        listeners.set(type, (own = new Set()));
        subscribeClient.subscribe(prefix + type).catch(ignoreUntilReady);
      }
      own.add(listener as EventListenerOrEventListenerObject);
    },
    removeEventListener(type, listener, opts) {
      if (!listener) return;
      local.removeEventListener(type, listener as EventListenerOrEventListenerObject, opts);
      const own = listeners.get(type);
      if (!own?.delete(listener as EventListenerOrEventListenerObject) || own.size > 0) return;
      listeners.delete(type);
      subscribeClient.unsubscribe(prefix + type).catch(ignoreUntilReady);
    },
    dispatchEvent(event) {
      local.dispatchEvent(new CustomEvent(event.type, { detail: event.detail }));
      const envelope: Envelope = { origin, seq: ++sequence, detail: event.detail };
      // Redis answers a publisher before it writes to the subscribers, so the answer alone does
      // not say the others have it. When this instance listens to the channel too, the message is
      // awaited until it comes back here, since Redis writes it to every subscriber in one go.
      let echoed: Promise<void> = Promise.resolve();
      if (listeners.has(event.type)) {
        echoed = new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            echoes.delete(envelope.seq);
            resolve();
          };
          const timer = setTimeout(done, ECHO_WAIT_MS);
          echoes.set(envelope.seq, done);
        });
      }
      const sent = publishClient
        .publish(prefix + event.type, JSON.stringify(envelope))
        .then(() => echoed)
        .catch((error: Error) => {
          echoes.get(envelope.seq)?.();
          publishFailures++;
          logger?.warn(`pub/sub: ${event.type} reached this instance only (${error.message})`);
        });
      pending.add(sent);
      void sent.finally(() => pending.delete(sent));
      return true;
    },
  };

  const connection: PubSubConnection = {
    get state() {
      return state;
    },
    get publishFailures() {
      return publishFailures;
    },
    onStateChange(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    async delivered() {
      await Promise.allSettled([...pending]);
    },
  };

  return {
    eventTarget,
    connection,
    async close() {
      // Messages are not awaited back at shutdown, only handed over.
      for (const done of echoes.values()) done();
      await Promise.allSettled([...pending]);
      closing = true;
      stateListeners.clear();
      await Promise.allSettled(
        [publishClient, subscribeClient].map((client) =>
          // QUIT would wait for a Redis that is away; a connection that is not up is just dropped.
          client.status === "ready" ? client.quit() : Promise.resolve(client.disconnect()),
        ),
      );
    },
  };
}
