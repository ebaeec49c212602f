import proxyAddr from "proxy-addr";
import { z } from "zod";

const booleanFlag = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((value) => value === "true" || value === "1" || value === "yes");

/**
 * Which proxies' X-Forwarded-For to believe: false (the socket's peer is the client), a hop count
 * (`true` is one hop), or trusted proxy addresses and subnets (`loopback`, `10.0.0.0/8`, ...).
 */
export type TrustProxy = false | number | string[];

const trustProxy = z.string().transform((value, ctx): TrustProxy => {
  const text = value.trim().toLowerCase();
  if (text === "false" || text === "0") return false;
  if (text === "true") return 1;
  if (/^\d+$/.test(text)) return Number(text);
  const addresses = text.split(",").map((entry) => entry.trim());
  try {
    proxyAddr.compile(addresses);
    return addresses;
  } catch (error) {
    ctx.addIssue({ code: "custom", message: `false, true, a hop count or proxy addresses: ${(error as Error).message}` });
    return z.NEVER;
  }
});

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z.string().url().optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1000).optional(),
  DATA_DIR: z.string().min(1).default(".data"),
  REDIS_URL: z.string().url().optional(),
  REDIS_CHANNEL_PREFIX: z.string().min(1).default("partner-portal:"),
  TRUST_PROXY: trustProxy.default(false),
  JWT_SECRET: z
    .string()
    .min(32, "JWT_SECRET must be at least 32 characters (256 bits)")
    .optional(),
  JWT_ISSUER: z.string().min(1).default("partner-portal"),
  JWT_AUDIENCE: z.string().min(1).default("partner-portal-api"),
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(60 * 60 * 24 * 90).default(60 * 60 * 12),
  API_KEY_HASH_SECRET: z
    .string()
    .min(32, "API_KEY_HASH_SECRET must be at least 32 characters (256 bits)")
    .optional(),
  API_KEY_ENVIRONMENT: z.enum(["live", "test"]).default("live"),
  SEED_DEMO: booleanFlag.optional(),
  DEMO_PASSWORD: z.string().min(12).optional(),
  ADMIN_EMAIL: z.string().email().optional(),
  ADMIN_USERNAME: z.string().min(3).optional(),
  ADMIN_PASSWORD: z.string().min(12).optional(),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  CORS_ORIGINS: z.string().default("*").transform(parseCorsOrigins),
  USAGE_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).optional(),
});

/**
 * `*` (any origin), or comma-separated origins such as `https://portal.example.com`: scheme, host
 * and port only, as browsers send them in the Origin header.
 */
function parseCorsOrigins(value: string, ctx: z.RefinementCtx): "*" | string[] {
  const origins = value.split(",").map((origin) => origin.trim()).filter(Boolean);
  if (origins.length === 0 || origins.includes("*")) return "*";
  for (const origin of origins) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      ctx.addIssue({ code: "custom", message: `"${origin}" is not an origin such as https://portal.example.com` });
    }
  }
  return origins;
}

export type Env = z.infer<typeof envSchema>;

export interface Config {
  port: number;
  host: string;
  /** A PostgreSQL server; when absent the embedded PGlite database under dataDir is used. */
  databaseUrl: string | undefined;
  /** Connections to a PostgreSQL server (the embedded database always uses one). */
  databasePoolSize: number | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  redisChannelPrefix: string;
  /** Whose X-Forwarded-For gives the client address the sign-in throttles count. */
  trustProxy: TrustProxy;
  jwt: { secret: string | undefined; issuer: string; audience: string; ttlSeconds: number };
  apiKeys: { hashSecret: string | undefined; environment: "live" | "test" };
  seedDemo: boolean;
  demoPassword: string | undefined;
  admin: { email: string; username: string | undefined; password: string } | undefined;
  shutdownTimeoutMs: number;
  logLevel: Env["LOG_LEVEL"];
  /** Origins whose pages may call the API from a browser (never with credentials); "*" for any. */
  corsOrigins: "*" | string[];
  /** Raw usage rows older than this many days are deleted (rollups keep the totals); undefined keeps all. */
  usageRetentionDays: number | undefined;
}

export class ConfigError extends Error {}

/** Reads the environment into one validated config; unknown or malformed values stop the start. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const blankToUndefined = Object.fromEntries(
    Object.entries(env).map(([key, value]) => [key, value === "" ? undefined : value]),
  );
  const parsed = envSchema.safeParse(blankToUndefined);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  const e = parsed.data;
  if ((e.ADMIN_EMAIL === undefined) !== (e.ADMIN_PASSWORD === undefined)) {
    throw new ConfigError("Invalid configuration: ADMIN_EMAIL and ADMIN_PASSWORD go together");
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    dataDir: e.DATA_DIR,
    redisUrl: e.REDIS_URL,
    redisChannelPrefix: e.REDIS_CHANNEL_PREFIX,
    trustProxy: e.TRUST_PROXY,
    jwt: { secret: e.JWT_SECRET, issuer: e.JWT_ISSUER, audience: e.JWT_AUDIENCE, ttlSeconds: e.SESSION_TTL_SECONDS },
    apiKeys: { hashSecret: e.API_KEY_HASH_SECRET, environment: e.API_KEY_ENVIRONMENT },
    // Demo accounts on a real server would be a door left open: there it is opt-in.
    seedDemo: e.SEED_DEMO ?? e.DATABASE_URL === undefined,
    demoPassword: e.DEMO_PASSWORD,
    admin:
      e.ADMIN_EMAIL && e.ADMIN_PASSWORD
        ? { email: e.ADMIN_EMAIL, username: e.ADMIN_USERNAME, password: e.ADMIN_PASSWORD }
        : undefined,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    corsOrigins: e.CORS_ORIGINS,
    usageRetentionDays: e.USAGE_RETENTION_DAYS,
  };
}
