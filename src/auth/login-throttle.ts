import ipaddr from "ipaddr.js";
import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";

/**
 * Failed sign-ins allowed per (account, client address) and per client address in the window.
 * Keyed on the pair, not the account alone, so nobody can lock a victim out by failing on purpose
 * from their own address; the per-address budget stops one address from spraying many accounts.
 */
export const LOGIN_FAILURES_PER_ACCOUNT = 10;
export const LOGIN_FAILURES_PER_ADDRESS = 100;
const LOGIN_WINDOW_SECONDS = 15 * 60;

/**
 * Sign-ups allowed per client address in the window, successful or not: each one either creates
 * an account or tells whether a username or email is taken, and each costs an argon2 hash.
 */
export const SIGN_UPS_PER_ADDRESS = 20;
const SIGN_UP_WINDOW_SECONDS = 60 * 60;

/** A sign-in attempt that was let through; its point is spent until `succeeded` gives it back. */
export type LoginAttempt =
  | { allowed: true; succeeded(): Promise<void> }
  | { allowed: false; retryAfterSeconds: number };

export interface LoginThrottle {
  /**
   * Takes one attempt from the client address's budget and from the account's budget at that
   * address, atomically and before any password is checked, so parallel attempts (over HTTP,
   * WebSockets or several instances) cannot all pass a count read before it was written.
   * `account` names the account whatever spelling was typed (see the login resolver).
   */
  loginAttempt(account: string, address: string | null): Promise<LoginAttempt>;
  /** Takes one sign-up from the address's budget: the seconds to wait, or 0 when it may go on. */
  signUpAttempt(address: string | null): Promise<number>;
  close(): Promise<void>;
}

/**
 * In memory, or in Redis (shared by every instance) when a URL is given. A Redis that cannot be
 * reached fails fast into an in-process limiter with the same budgets, so sign-in keeps working
 * and stays throttled, per instance, until Redis is back.
 */
export function createLoginThrottle(options: {
  redisUrl?: string;
  keyPrefix: string;
  onRedisError?: (error: Error) => void;
  /** Told of every attempt the throttle refuses (metrics). */
  onThrottled?: (attempt: "login" | "sign_up") => void;
}): LoginThrottle {
  const client = options.redisUrl
    ? new Redis(options.redisUrl, {
        // No queueing and no retrying: while Redis is down, a command fails at once (or within
        // commandTimeout when it hangs) and the insurance limiter answers instead of the request waiting.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: 1000,
      })
    : null;
  // Without a listener, an unreachable Redis would be reported as an unhandled error event. One
  // report per outage: ioredis raises the error again at every reconnection attempt.
  let outageReported = false;
  client?.on("error", (error: Error) => {
    if (!outageReported) options.onRedisError?.(error);
    outageReported = true;
  });
  client?.on("ready", () => (outageReported = false));

  const limiter = (name: string, points: number, duration: number, blockDuration = 0): RateLimiterAbstract => {
    const settings = { keyPrefix: `${options.keyPrefix}${name}`, points, duration, blockDuration };
    if (!client) return new RateLimiterMemory(settings);
    return new RateLimiterRedis({
      ...settings,
      storeClient: client,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(settings),
    });
  };
  const byAccount = limiter("login-account", LOGIN_FAILURES_PER_ACCOUNT, LOGIN_WINDOW_SECONDS, LOGIN_WINDOW_SECONDS);
  const byAddress = limiter("login-address", LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW_SECONDS, LOGIN_WINDOW_SECONDS);
  const signUps = limiter("signup-address", SIGN_UPS_PER_ADDRESS, SIGN_UP_WINDOW_SECONDS);

  /** The seconds to wait when the budget is spent (the point taken stays taken), else 0. */
  const take = async (rateLimiter: RateLimiterAbstract, key: string): Promise<number> => {
    try {
      await rateLimiter.consume(key);
      return 0;
    } catch (refusal) {
      if (refusal instanceof RateLimiterRes) return Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
      throw refusal;
    }
  };

  return {
    async loginAttempt(account, address) {
      const addressKey = bucketOf(address);
      const accountKey = `${account}|${addressKey}`;
      const addressWait = await take(byAddress, addressKey);
      if (addressWait > 0) {
        options.onThrottled?.("login");
        return { allowed: false, retryAfterSeconds: addressWait };
      }
      const accountWait = await take(byAccount, accountKey);
      if (accountWait > 0) {
        // A refused attempt is not a failure: it gives back what it took from the address.
        await byAddress.reward(addressKey);
        options.onThrottled?.("login");
        return { allowed: false, retryAfterSeconds: accountWait };
      }
      return {
        allowed: true,
        // Only failures count. A success gives back its own points and nothing more, so signing
        // in (the victim, from an address shared with an attacker) never resets a guesser's count.
        succeeded: async () => {
          await Promise.all([byAccount.reward(accountKey), byAddress.reward(addressKey)]);
        },
      };
    },
    async signUpAttempt(address) {
      const wait = await take(signUps, bucketOf(address));
      if (wait > 0) options.onThrottled?.("sign_up");
      return wait;
    },
    async close() {
      if (!client) return;
      // quit() is refused while disconnected (no offline queue): then just drop the socket.
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/**
 * The budget an address draws on. An IPv6 client usually holds a whole /64 and could take a fresh
 * address for every attempt, so IPv6 addresses share their /64's budget; IPv4-mapped IPv6
 * addresses count as the IPv4 address they carry.
 */
export function bucketOf(address: string | null): string {
  if (!address || !ipaddr.isValid(address)) return address ?? "-";
  const parsed = ipaddr.process(address);
  if (parsed.kind() === "ipv4") return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${parts.join(":")}::/64`;
}
