import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import type { TypedEventTarget } from "@graphql-yoga/typed-event-target";
import { createPubSub, type PubSub } from "graphql-yoga";
import { Redis } from "ioredis";
import type { HttpMethod } from "../generated/prisma/enums.js";

/**
 * Every channel the server uses, with what flows through it. Each is published to by the module
 * named in its comment and subscribed to where that state matters.
 */
export type PubSubChannels = {
  /** auth: a session ended (logout); every instance closes that session's WebSockets. */
  "session:revoked": [payload: { sessionId: string }];
  /** auth/service-credentials: a credential was revoked; every instance drops its cached trust. */
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

export interface PubSubHandle {
  pubsub: AppPubSub;
  close(): Promise<void>;
}

/**
 * In memory by default; over Redis when a URL is given, so events reach every instance. Channel
 * names are prefixed so that several deployments (or test runs) can share one Redis.
 */
export function createAppPubSub(options: { redisUrl?: string; channelPrefix: string }): PubSubHandle {
  if (!options.redisUrl) return { pubsub: createPubSub<PubSubChannels>(), close: async () => {} };

  const publishClient = new Redis(options.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
  const subscribeClient = new Redis(options.redisUrl, { lazyConnect: false });
  const redisTarget = createRedisEventTarget<CustomEvent>({ publishClient, subscribeClient });
  const prefix = options.channelPrefix;
  const eventTarget: TypedEventTarget<CustomEvent> = {
    addEventListener: (type, listener, opts) => redisTarget.addEventListener(prefix + type, listener, opts),
    removeEventListener: (type, listener, opts) =>
      redisTarget.removeEventListener(prefix + type, listener, opts),
    dispatchEvent: (event) =>
      redisTarget.dispatchEvent(new CustomEvent(prefix + event.type, { detail: event.detail })),
  };
  return {
    pubsub: createPubSub<PubSubChannels>({ eventTarget }),
    async close() {
      await Promise.allSettled([publishClient.quit(), subscribeClient.quit()]);
    },
  };
}
