import { LRUCache } from "lru-cache";
import type { Viewer } from "./callers.js";
import { listen, type AppPubSub, type PubSubConnection } from "../realtime/pubsub.js";

export interface SessionCache {
  /** The cached answer for a session: its viewer, "ended" for a session that can never work again, or undefined. */
  get(sessionId: string): Viewer | "ended" | undefined;
  /** A token taken before a database read, for `set`. */
  mark(): number;
  /**
   * Remembers what the database said, unless a session was revoked while it was being read (the
   * read may predate the revocation) or messages between instances are not arriving.
   */
  set(sessionId: string, answer: Viewer | "ended", readStartedAt: number): void;
  /**
   * After a session ended (committed): every instance forgets it. Resolves once Redis has taken
   * the message, and so has sent it to every other instance, so a logout's answer reaches the
   * client after the other instances were told.
   */
  revoke(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

/** Upper bound on how long a cached session is trusted without asking the database again. */
export const SESSION_CACHE_TTL_MS = 60_000;
const MAX_ENTRIES = 50_000;

/**
 * The sessions this instance has recently authenticated, keyed by session id, so a signed-in
 * request costs no database statement. Logout, a change of rights and expiry still refuse the
 * token from the next request on: revocations travel over the pub/sub (`session:revoked`), the
 * caller checks each entry's expiry, and while Redis is unreachable (a revocation elsewhere could
 * not arrive) nothing is answered from the cache; it starts empty again when Redis returns.
 */
export function createSessionCache(options: {
  pubsub: AppPubSub;
  connection: Pick<PubSubConnection, "state" | "onStateChange" | "delivered">;
  ttlMs?: number;
  maxEntries?: number;
}): SessionCache {
  const { pubsub, connection } = options;
  const cache = new LRUCache<string, Viewer | "ended">({
    max: options.maxEntries ?? MAX_ENTRIES,
    ttl: options.ttlMs ?? SESSION_CACHE_TTL_MS,
  });
  // Bumped by every revocation and change of connection; a read that started before one is not kept.
  let epoch = 0;
  const usable = () => connection.state !== "disconnected";
  const stopWatching = connection.onStateChange(() => {
    epoch++;
    cache.clear();
  });
  const revocations = listen(pubsub, "session:revoked", ({ sessionId }) => {
    epoch++;
    cache.delete(sessionId);
  });

  return {
    get: (sessionId) => (usable() ? cache.get(sessionId) : undefined),
    mark: () => epoch,
    set(sessionId, answer, readStartedAt) {
      if (readStartedAt === epoch && usable()) cache.set(sessionId, answer);
    },
    async revoke(sessionId) {
      epoch++;
      cache.delete(sessionId);
      pubsub.publish("session:revoked", { sessionId });
      await connection.delivered();
    },
    async close() {
      stopWatching();
      await revocations.stop();
      cache.clear();
    },
  };
}
