import { timingSafeEqual } from "node:crypto";
import type { PrismaClient } from "../db/index.js";
import type { PartnerStatus } from "../generated/prisma/enums.js";
import { listen, type AppPubSub, type PubSubConnection } from "../realtime/pubsub.js";
import type { DataChanges } from "../realtime/changes.js";
import { hashSecret, parseSecret, secretCacheKey, type SecretEnvironment } from "./api-key-secret.js";

export const VERIFICATION_CODES = [
  "VALID",
  "NOT_FOUND",
  "MALFORMED",
  "REVOKED",
  "EXPIRED",
  "PARTNER_SUSPENDED",
  "INSUFFICIENT_SCOPE",
  "DISABLED",
] as const;
export type VerificationCode = (typeof VERIFICATION_CODES)[number];

/** The state of a key that decides whether it may be used. */
export interface KeyState {
  isActive: boolean;
  revokedAt: Date | null;
  /** When the presented secret stops working (the key's expiry, or a rotated-out secret's grace end). */
  expiresAt: Date | null;
  partnerStatus: PartnerStatus;
}

/**
 * Why a key may not be used at this time, or null when it may: the one rule that verification
 * (for the gateway) and ingest (for usage naming a key by id) both apply.
 */
export function keyRefusal(key: KeyState, now: Date): "REVOKED" | "DISABLED" | "EXPIRED" | "PARTNER_SUSPENDED" | null {
  if (key.revokedAt) return "REVOKED";
  // Disabled (not revoked): refused until enabled again.
  if (!key.isActive) return "DISABLED";
  if (key.expiresAt && key.expiresAt.getTime() <= now.getTime()) return "EXPIRED";
  if (key.partnerStatus !== "active") return "PARTNER_SUSPENDED";
  return null;
}

/** What a verification answers. Ids are the database ids (not Relay global ids). */
export interface Verification {
  valid: boolean;
  code: VerificationCode;
  apiKeyId: string | null;
  partnerId: string | null;
  /** The key's scopes (stored strings such as `usage:read`); empty when no key matched. */
  scopes: string[];
  /** When the presented secret stops working: the key's expiry, or a rotated-out secret's grace end. */
  expiresAt: Date | null;
}

export interface VerifyOptions {
  /** The time to judge expiry against; defaults to the verifier's clock. */
  now?: Date;
  /** Scopes the caller needs; a key lacking one answers INSUFFICIENT_SCOPE. */
  requiredScopes?: readonly string[];
  /** Record the use in `lastUsedAt` (throttled). Default true. */
  touch?: boolean;
}

/** A key named by its id (ingest), with what decides whether it may be used. */
export interface KeyByIdState extends KeyState {
  apiKeyId: string;
  partnerId: string;
}

export interface ApiKeyVerifier {
  /** Verifies a presented secret. A cached key costs no database round trip. */
  verify(secret: string, options?: VerifyOptions): Promise<Verification>;
  /**
   * The keys with these database ids (those that exist), cached as secrets are and dropped by the
   * same invalidations: a batch naming cached keys costs no database round trip, and one read
   * for all the others.
   */
  keyStates(apiKeyIds: readonly string[]): Promise<Map<string, KeyByIdState>>;
  /** Drops a key from every instance's cache (after rotate, revoke, disable, enable or an edit has committed). */
  invalidateKey(apiKeyId: string): Promise<void>;
  /** Drops a partner's keys from every instance's cache (after its status changed). */
  invalidatePartner(partnerId: string): Promise<void>;
  close(): Promise<void>;
}

export interface ApiKeyVerifierOptions {
  prisma: PrismaClient;
  pubsub: AppPubSub;
  /** While Redis is away an invalidation from elsewhere could be missed: the cache is not used then. */
  connection: Pick<PubSubConnection, "state" | "onStateChange">;
  hashKey: Uint8Array;
  environment: SecretEnvironment;
  now: () => Date;
  maxEntries?: number;
  /** Told when a key's lastUsedAt was written (cached query answers showing it are dropped). */
  changes?: DataChanges;
  /** Told of every verification's answer and whether the cache had the key (metrics). */
  observe?: { verified(code: VerificationCode): void; cacheLookup(hit: boolean): void };
}

interface CachedKey {
  found: true;
  /** The secret's secretCacheKey: what the cache is keyed by. */
  cacheKey: string;
  apiKeyId: string;
  partnerId: string;
  partnerStatus: PartnerStatus;
  scopes: string[];
  expiresAt: Date | null;
  isActive: boolean;
  revokedAt: Date | null;
  /** Set when the hash is a rotated-out secret: when it stops working. */
  previousSecretExpiresAt: Date | null;
  cachedAt: number;
}

interface CachedMiss {
  found: false;
  cacheKey: string;
  cachedAt: number;
}

type CacheEntry = CachedKey | CachedMiss;

/**
 * How long an entry may live without an invalidation. Rotate, revoke and suspension invalidate
 * at once; this only bounds staleness if a pub/sub message was lost (a Redis reconnect).
 */
const POSITIVE_TTL_MS = 5 * 60_000;
/** Unknown secrets are remembered briefly, so a retry storm with one bad key stays off the database. */
const NEGATIVE_TTL_MS = 10_000;
/** `lastUsedAt` is written at most this often per key, so a busy key is not a write per request. */
export const LAST_USED_THROTTLE_MS = 60_000;
const DEFAULT_MAX_ENTRIES = 10_000;

const monotonicMs = () => performance.now();

export function createApiKeyVerifier(options: ApiKeyVerifierOptions): ApiKeyVerifier {
  const { prisma, pubsub } = options;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const cache = new Map<string, CacheEntry>();
  const loading = new Map<string, Promise<CacheEntry>>();
  // Bumped by every invalidation; a database read that started before one is not cached.
  let epoch = 0;
  const lastTouched = new Map<string, number>();
  // Keys by id, for ingest (unknown ids are not remembered: they cost a read each batch).
  const byId = new Map<string, { state: KeyByIdState; cachedAt: number }>();
  const pendingWrites = new Set<Promise<unknown>>();

  function remember(entry: CacheEntry) {
    cache.delete(entry.cacheKey);
    cache.set(entry.cacheKey, entry);
    // Map keeps insertion order, so the first key is the least recently used.
    while (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
  }

  function cached(cacheKey: string): CacheEntry | undefined {
    if (options.connection.state === "disconnected") return undefined;
    const entry = cache.get(cacheKey);
    if (!entry) return undefined;
    const ttl = entry.found ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS;
    if (monotonicMs() - entry.cachedAt > ttl) {
      cache.delete(cacheKey);
      return undefined;
    }
    cache.delete(cacheKey);
    cache.set(cacheKey, entry);
    return entry;
  }

  /** Reads the key whose stored hash (current or rotated-out) is `hash`. */
  async function load(hash: string, cacheKey: string): Promise<CacheEntry> {
    const startedAt = epoch;
    const key = await prisma.apiKey.findFirst({
      where: { OR: [{ secretHash: hash }, { previousSecretHash: hash }] },
      select: {
        id: true,
        partnerId: true,
        scopes: true,
        isActive: true,
        expiresAt: true,
        revokedAt: true,
        secretHash: true,
        previousSecretExpiresAt: true,
        partner: { select: { status: true } },
      },
    });
    const entry: CacheEntry = key
      ? {
          found: true,
          cacheKey,
          apiKeyId: key.id,
          partnerId: key.partnerId,
          partnerStatus: key.partner.status,
          scopes: key.scopes,
          expiresAt: key.expiresAt,
          isActive: key.isActive,
          revokedAt: key.revokedAt,
          previousSecretExpiresAt: sameHash(key.secretHash, hash) ? null : (key.previousSecretExpiresAt ?? new Date(0)),
          cachedAt: monotonicMs(),
        }
      : { found: false, cacheKey, cachedAt: monotonicMs() };
    if (epoch === startedAt && options.connection.state !== "disconnected") remember(entry);
    return entry;
  }

  /** The entry for a well-formed secret of this environment: cached, or read once however many ask at once. */
  function lookup(secret: string, cacheKey: string): Promise<CacheEntry> {
    let pending = loading.get(cacheKey);
    if (!pending) {
      const started: Promise<CacheEntry> = load(hashSecret(options.hashKey, secret), cacheKey).finally(() => {
        if (loading.get(cacheKey) === started) loading.delete(cacheKey);
      });
      loading.set(cacheKey, started);
      pending = started;
    }
    return pending;
  }

  async function keyStates(apiKeyIds: readonly string[]): Promise<Map<string, KeyByIdState>> {
    const found = new Map<string, KeyByIdState>();
    const missing: string[] = [];
    const usable = options.connection.state !== "disconnected";
    for (const id of new Set(apiKeyIds)) {
      const entry = usable ? byId.get(id) : undefined;
      if (entry && monotonicMs() - entry.cachedAt <= POSITIVE_TTL_MS) {
        byId.delete(id);
        byId.set(id, entry);
        found.set(id, entry.state);
      } else {
        missing.push(id);
      }
    }
    if (missing.length === 0) return found;
    const startedAt = epoch;
    const keys = await prisma.apiKey.findMany({
      where: { id: { in: missing } },
      select: { id: true, partnerId: true, isActive: true, revokedAt: true, expiresAt: true, partner: { select: { status: true } } },
    });
    const cachedAt = monotonicMs();
    for (const key of keys) {
      const { id: apiKeyId, partnerId, isActive, revokedAt, expiresAt } = key;
      const state: KeyByIdState = { apiKeyId, partnerId, isActive, revokedAt, expiresAt, partnerStatus: key.partner.status };
      found.set(apiKeyId, state);
      // A read that started before an invalidation may predate it: used once, not kept.
      if (epoch !== startedAt || options.connection.state === "disconnected") continue;
      byId.set(apiKeyId, { state, cachedAt });
      if (byId.size > maxEntries) {
        const oldest = byId.keys().next().value;
        if (oldest !== undefined) byId.delete(oldest);
      }
    }
    return found;
  }

  function touch(apiKeyId: string, partnerId: string, now: Date) {
    const last = lastTouched.get(apiKeyId);
    if (last !== undefined && now.getTime() - last < LAST_USED_THROTTLE_MS) return;
    lastTouched.delete(apiKeyId);
    lastTouched.set(apiKeyId, now.getTime());
    if (lastTouched.size > maxEntries) {
      const oldest = lastTouched.keys().next().value;
      if (oldest !== undefined) lastTouched.delete(oldest);
    }
    // The condition also throttles across instances: only one of them writes per interval.
    const write = prisma.apiKey
      .updateMany({
        where: {
          id: apiKeyId,
          OR: [{ lastUsedAt: null }, { lastUsedAt: { lte: new Date(now.getTime() - LAST_USED_THROTTLE_MS) } }],
        },
        data: { lastUsedAt: now },
      })
      .then(({ count }) => (count > 0 ? options.changes?.changed([partnerId]) : undefined))
      .catch(() => {
        // Losing one lastUsedAt write is harmless; the next use past the interval retries.
        lastTouched.delete(apiKeyId);
      });
    pendingWrites.add(write);
    void write.finally(() => pendingWrites.delete(write));
  }

  function apply(event: { apiKeyId: string | null; partnerId: string | null }) {
    epoch++;
    // Reads already under way may predate the change; later callers start their own.
    loading.clear();
    for (const [hash, entry] of cache) {
      if (!entry.found) continue;
      if (entry.apiKeyId === event.apiKeyId || entry.partnerId === event.partnerId) cache.delete(hash);
    }
    for (const [id, { state }] of byId) {
      if (id === event.apiKeyId || state.partnerId === event.partnerId) byId.delete(id);
    }
  }


  async function invalidate(event: { apiKeyId: string | null; partnerId: string | null }) {
    // Applied here at once, so this instance's next verification already sees the change; the
    // message reaches the other instances (and echoes back here, harmlessly).
    apply(event);
    pubsub.publish("apiKey:invalidated", event);
  }

  const invalidations = listen(pubsub, "apiKey:invalidated", apply);
  // Whatever was cached before Redis went away, or while it was away, may have missed an
  // invalidation: it is dropped both when the connection is lost and when it returns.
  const stopWatching = options.connection.onStateChange(() => {
    epoch++;
    loading.clear();
    cache.clear();
    byId.clear();
  });

  const verifier: ApiKeyVerifier = {
    async verify(secret, verifyOptions = {}) {
      const now = verifyOptions.now ?? options.now();
      // Only a well-formed secret of this environment was ever cached, so a hit needs no parse.
      const cacheKey = secretCacheKey(secret);
      let entry = cached(cacheKey);
      if (entry) {
        options.observe?.cacheLookup(true);
      } else {
        const parsed = parseSecret(secret);
        if (!parsed || parsed.kind !== "ppk") return miss("MALFORMED");
        // A key minted for the other environment cannot be stored here.
        if (parsed.environment !== options.environment) return miss("NOT_FOUND");
        options.observe?.cacheLookup(false);
        entry = await lookup(secret, cacheKey);
      }
      if (!entry.found) return miss("NOT_FOUND");

      const secretExpiresAt = earliest(entry.expiresAt, entry.previousSecretExpiresAt);
      const answer = (code: VerificationCode): Verification => ({
        valid: code === "VALID",
        code,
        apiKeyId: entry.apiKeyId,
        partnerId: entry.partnerId,
        scopes: entry.scopes,
        expiresAt: secretExpiresAt,
      });
      const refusal = keyRefusal({ ...entry, expiresAt: secretExpiresAt }, now);
      if (refusal) return answer(refusal);
      if (verifyOptions.requiredScopes?.some((scope) => !entry.scopes.includes(scope))) {
        return answer("INSUFFICIENT_SCOPE");
      }
      if (verifyOptions.touch !== false) touch(entry.apiKeyId, entry.partnerId, now);
      return answer("VALID");
    },

    keyStates,
    invalidateKey: (apiKeyId) => invalidate({ apiKeyId, partnerId: null }),
    invalidatePartner: (partnerId) => invalidate({ apiKeyId: null, partnerId }),

    async close() {
      stopWatching();
      await invalidations.stop();
      while (pendingWrites.size > 0) await Promise.allSettled([...pendingWrites]);
      cache.clear();
      byId.clear();
    },
  };
  const { observe } = options;
  if (!observe) return verifier;
  return {
    ...verifier,
    async verify(secret, verifyOptions) {
      const verification = await verifier.verify(secret, verifyOptions);
      observe.verified(verification.code);
      return verification;
    },
  };
}

function miss(code: "MALFORMED" | "NOT_FOUND"): Verification {
  return { valid: false, code, apiKeyId: null, partnerId: null, scopes: [], expiresAt: null };
}

/** Constant-time comparison of two stored-format hashes. */
function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function earliest(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a.getTime() <= b.getTime() ? a : b;
}
