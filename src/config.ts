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

/** A link with `{token}` where the one-time token goes, e.g. `https://portal.example.com/invite?token={token}`. */
const linkTemplate = z
  .string()
  .refine((value) => value.includes("{token}"), "must contain {token}")
  .refine((value) => URL.canParse(value.replace("{token}", "t")), "must be a URL");

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z
    .url({
      protocol: /^postgres(ql)?$/,
      error: "must be a PostgreSQL URL (postgresql://user:password@host:5432/database); unset, the embedded database is used",
    })
    .optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(1000).optional(),
  DATA_DIR: z.string().min(1).default(".data"),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: "must be a Redis URL (redis://host:6379 or rediss://…)" }).optional(),
  REDIS_CHANNEL_PREFIX: z.string().min(1).default("partner-portal:"),
  TRUST_PROXY: trustProxy.default(false),
  JWT_SECRET: z
    .string()
    .min(32, "must be at least 32 characters (256 bits)")
    .optional(),
  JWT_ISSUER: z.string().min(1).default("partner-portal"),
  JWT_AUDIENCE: z.string().min(1).default("partner-portal-api"),
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(60 * 60 * 24 * 90).default(60 * 60 * 12),
  API_KEY_HASH_SECRET: z
    .string()
    .min(32, "must be at least 32 characters (256 bits)")
    .optional(),
  API_KEY_ENVIRONMENT: z.enum(["live", "test"]).default("live"),
  SEED_DEMO: booleanFlag.optional(),
  DEMO_PASSWORD: z.string().min(12).optional(),
  ADMIN_EMAIL: z.string().email().optional(),
  ADMIN_USERNAME: z.string().min(3).optional(),
  ADMIN_PASSWORD: z.string().min(12).optional(),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  METRICS_TOKEN: z.string().min(16, "METRICS_TOKEN must be at least 16 characters").optional(),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  CORS_ORIGINS: z.string().default("*").transform(parseCorsOrigins),
  PERSISTED_OPERATIONS_FILE: z.string().min(1).optional(),
  PERSISTED_OPERATIONS_ONLY: booleanFlag.default(false),
  INVITATION_URL_TEMPLATE: linkTemplate.optional(),
  PASSWORD_RESET_URL_TEMPLATE: linkTemplate.optional(),
  LIVE_BACKLOG_BYTES: z.coerce.number().int().min(1024).default(4 * 1024 * 1024),
  USAGE_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).optional(),
  RESPONSE_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
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
  /** JSON lines or coloured text; by default JSON unless standard output is a terminal. */
  logFormat: Env["LOG_FORMAT"];
  /** `/metrics` asks for `Authorization: Bearer <token>` when set; on its own port when `port` is. */
  metrics: { token: string | undefined; port: number | undefined };
  /** Origins whose pages may call the API from a browser (never with credentials); "*" for any. */
  corsOrigins: "*" | string[];
  /**
   * A codegen manifest of first-party operations (hash -> document), known without registering;
   * with `only`, nothing else runs.
   */
  persistedOperations: { file: string | undefined; only: boolean };
  /** Templates of the links invitations and password resets answer (`{token}` replaced); none: the token alone. */
  links: { invitation: string | undefined; passwordReset: string | undefined };
  /**
   * Bytes of results a live subscriber may have waiting to be sent; a batch arriving while it holds
   * more ends its stream with EVENTS_DROPPED. A batch is always taken whole by a subscriber under it.
   */
  liveBacklogBytes: number;
  /** Raw usage rows older than this many days are deleted (rollups keep the totals); undefined keeps all. */
  usageRetentionDays: number | undefined;
  /**
   * How long a cached query answer may be served without any change having been seen; 0 turns
   * the response cache off (http/response-cache.ts).
   */
  responseCacheTtlMs: number;
}

/**
 * The settings that stop the start, one line each (`VARIABLE: what is wrong`); the message is
 * what the server prints, never a value (a setting may hold a password).
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

export const SECRET_REQUIRED = "required when DATABASE_URL is set (32+ characters, the same on every instance)";

/** Settings that are valid alone but not together. */
function crossChecks(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if ((env.ADMIN_EMAIL === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
    problems.push("ADMIN_EMAIL, ADMIN_PASSWORD: set both or neither");
  }
  if (env.PERSISTED_OPERATIONS_ONLY === "true" && env.PERSISTED_OPERATIONS_FILE === undefined) {
    problems.push("PERSISTED_OPERATIONS_ONLY: needs PERSISTED_OPERATIONS_FILE");
  }
  // Generated keys are kept beside the embedded database; instances sharing a server must share keys.
  if (env.DATABASE_URL !== undefined) {
    for (const name of ["JWT_SECRET", "API_KEY_HASH_SECRET"] as const) {
      if (env[name] === undefined) problems.push(`${name}: ${SECRET_REQUIRED}`);
    }
  }
  return problems;
}

/** Reads the environment into one validated config; unknown or malformed values stop the start. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const blankToUndefined = Object.fromEntries(
    Object.entries(env).map(([key, value]) => [key, value === "" ? undefined : value]),
  );
  const parsed = envSchema.safeParse(blankToUndefined);
  const problems = [
    ...(parsed.error?.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`) ?? []),
    ...crossChecks(blankToUndefined),
  ];
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const e = parsed.data;
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
    logFormat: e.LOG_FORMAT,
    metrics: { token: e.METRICS_TOKEN, port: e.METRICS_PORT },
    corsOrigins: e.CORS_ORIGINS,
    persistedOperations: { file: e.PERSISTED_OPERATIONS_FILE, only: e.PERSISTED_OPERATIONS_ONLY },
    links: { invitation: e.INVITATION_URL_TEMPLATE, passwordReset: e.PASSWORD_RESET_URL_TEMPLATE },
    liveBacklogBytes: e.LIVE_BACKLOG_BYTES,
    usageRetentionDays: e.USAGE_RETENTION_DAYS,
    responseCacheTtlMs: e.RESPONSE_CACHE_TTL_SECONDS * 1000,
  };
}
