import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";

/**
 * Failed sign-ins allowed per (login, client address) and per client address in the window.
 * Keyed on the pair, not the account alone, so nobody can lock a victim out by failing on purpose
 * from their own address; the per-address budget stops one address from spraying many accounts.
 */
export const LOGIN_FAILURES_PER_ACCOUNT = 10;
export const LOGIN_FAILURES_PER_ADDRESS = 100;
const WINDOW_SECONDS = 15 * 60;

export interface LoginThrottle {
  /** Seconds until the caller may try again, or 0 when it may try now. */
  retryAfter(login: string, address: string | null): Promise<number>;
  /** Counts a failed attempt. */
  failed(login: string, address: string | null): Promise<void>;
  /** Forgets the failures of this login from this address (a successful sign-in). */
  succeeded(login: string, address: string | null): Promise<void>;
  close(): Promise<void>;
}

/** In memory, or in Redis (shared by every instance) when a URL is given. */
export function createLoginThrottle(options: { redisUrl?: string; keyPrefix: string }): LoginThrottle {
  const client = options.redisUrl ? new Redis(options.redisUrl, { maxRetriesPerRequest: 3 }) : null;
  const limiter = (name: string, points: number): RateLimiterAbstract => {
    const settings = { keyPrefix: `${options.keyPrefix}login-${name}`, points, duration: WINDOW_SECONDS, blockDuration: WINDOW_SECONDS };
    return client ? new RateLimiterRedis({ ...settings, storeClient: client }) : new RateLimiterMemory(settings);
  };
  const byAccount = limiter("account", LOGIN_FAILURES_PER_ACCOUNT);
  const byAddress = limiter("address", LOGIN_FAILURES_PER_ADDRESS);
  const accountKey = (login: string, address: string | null) => `${login.trim().toLowerCase()}|${address ?? "-"}`;
  const addressKey = (address: string | null) => address ?? "-";

  const waitOf = (result: RateLimiterRes | null, points: number) =>
    result && result.consumedPoints >= points ? Math.ceil(result.msBeforeNext / 1000) : 0;

  return {
    async retryAfter(login, address) {
      const [account, fromAddress] = await Promise.all([
        byAccount.get(accountKey(login, address)),
        byAddress.get(addressKey(address)),
      ]);
      return Math.max(waitOf(account, LOGIN_FAILURES_PER_ACCOUNT), waitOf(fromAddress, LOGIN_FAILURES_PER_ADDRESS));
    },
    async failed(login, address) {
      // A rejection here only means the budget was already spent; the attempt is refused anyway.
      await Promise.allSettled([byAccount.consume(accountKey(login, address)), byAddress.consume(addressKey(address))]);
    },
    async succeeded(login, address) {
      await byAccount.delete(accountKey(login, address));
    },
    async close() {
      await client?.quit();
    },
  };
}
