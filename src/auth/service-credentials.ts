import type { ServiceCaller } from "./callers.js";
import type { PrismaClient } from "../db/index.js";
import { listen, type AppPubSub, type PubSubConnection } from "../realtime/pubsub.js";
import { hashSecret, parseSecret, secretCacheKey } from "./api-key-secret.js";

/**
 * How long an authenticated credential is trusted without asking the database. Revocation
 * through the API (or the CLI with REDIS_URL) clears every instance's cache at once, and so does
 * the pub/sub's return after an outage (a revocation may have been missed); this only bounds
 * staleness when no message can arrive (the CLI without Redis).
 */
const TRUST_MS = 30_000;
/** Unknown secrets are remembered briefly, so a retry storm with a bad credential stays off the database. */
const UNKNOWN_MS = 10_000;
const MAX_ENTRIES = 1_000;

export interface ServiceCredentialAuth {
  /** The credential a `pps_…` bearer secret belongs to, or null when it is unknown, malformed or revoked. */
  authenticate(secret: string): Promise<ServiceCaller | null>;
  close(): Promise<void>;
}

/**
 * The gateway sends its credential with every verification and ingest call, so authenticating it
 * is on the hot path: answers are cached, keyed by a plain hash of the secret (secretCacheKey).
 */
export function createServiceCredentialAuth(options: {
  prisma: PrismaClient;
  pubsub: AppPubSub;
  connection: Pick<PubSubConnection, "state" | "onStateChange">;
  hashKey: Uint8Array;
}): ServiceCredentialAuth {
  const cache = new Map<string, { caller: ServiceCaller | null; at: number }>();
  const revocations = listen(options.pubsub, "serviceCredential:revoked", () => cache.clear());
  // A revocation elsewhere reaches this instance only as a message: while Redis is away nothing
  // is answered from the cache, and it starts empty again when Redis returns.
  const stopWatching = options.connection.onStateChange(() => cache.clear());

  return {
    async authenticate(secret) {
      // Only well-formed `pps_` secrets are cached, so a hit needs neither a parse nor the keyed hash.
      const cacheKey = secretCacheKey(secret);
      const hit = options.connection.state === "disconnected" ? undefined : cache.get(cacheKey);
      if (hit && performance.now() - hit.at < (hit.caller ? TRUST_MS : UNKNOWN_MS)) return hit.caller;
      if (parseSecret(secret)?.kind !== "pps") return null;
      const row = await options.prisma.serviceCredential.findUnique({
        where: { secretHash: hashSecret(options.hashKey, secret) },
        select: { id: true, name: true, revokedAt: true },
      });
      const caller = row && !row.revokedAt ? { id: row.id, name: row.name } : null;
      if (cache.size >= MAX_ENTRIES) cache.clear();
      cache.set(cacheKey, { caller, at: performance.now() });
      return caller;
    },
    async close() {
      stopWatching();
      await revocations.stop();
    },
  };
}
