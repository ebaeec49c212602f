import { createApiKeyVerifier } from "./auth/api-key-verifier.js";
import { createBearerAuth } from "./auth/bearer.js";
import { createLoginThrottle } from "./auth/login-throttle.js";
import { loadSecrets, type ServerSecrets } from "./auth/secrets.js";
import { createServiceCredentialAuth } from "./auth/service-credentials.js";
import { createSessionCache } from "./auth/session-cache.js";
import { createSessionTokens } from "./auth/session-token.js";
import { createSessions } from "./auth/sessions.js";
import type { Config } from "./config.js";
import { openDatabase, type Database } from "./db/index.js";
import type { EmbeddedPostgres } from "./db/embedded.js";
import { createApiKeys } from "./domain/api-keys.js";
import { createDeveloperDocs } from "./domain/developer-docs.js";
import { createInvitations } from "./domain/invitations.js";
import { createPartners } from "./domain/partners.js";
import { createServiceCredentials } from "./domain/service-credentials.js";
import { createUserRights } from "./domain/users.js";
import { createAccessLog } from "./http/access-log.js";
import { createMetricsServer } from "./http/metrics.js";
import { createResponseCache } from "./http/response-cache.js";
import { createHttpServer } from "./http/server.js";
import { attachWebSockets } from "./http/websocket.js";
import { createGraphQLServer } from "./http/yoga.js";
import { createLogger, yogaLogger, type Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createAppPubSub, reachState, type PubSubConnection } from "./realtime/pubsub.js";
import type { Services } from "./schema/context.js";
import { buildSchema } from "./schema/index.js";
import { createUsage } from "./usage/index.js";

/** Request bodies and WebSocket messages larger than this are refused before they are parsed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** How long start-up waits for Redis to answer before serving without it. */
const REDIS_START_WAIT_MS = 5_000;

export interface AppOptions {
  /** The clock; tests inject one to move time without sleeping. */
  now?: () => Date;
  /** Where the server logs; by default standard output at `config.logLevel` in `config.logFormat`. */
  logger?: Logger;
  /** Told each start-up step as it happens (the server prints them). */
  progress?: (step: string) => void;
  /** The embedded database, already starting (without DATABASE_URL); see openDatabase. */
  embeddedDatabase?: Promise<EmbeddedPostgres>;
}

export interface App {
  config: Config;
  secrets: ServerSecrets;
  services: Services;
  database: Database;
  /** Whether events cross instances right now (Redis up), as `/readyz` reports it. */
  pubsub: PubSubConnection;
  logger: Logger;
  /** This instance's Prometheus metrics (a registry of its own). */
  metrics: Metrics;
  /** With METRICS_PORT: the URL `/metrics` is served on, once started. */
  readonly metricsUrl: string | null;
  /** Listens on the port (0 picks a free one); resolves with the GraphQL endpoint's URL. */
  start(port?: number, host?: string): Promise<string>;
  /** Stops accepting, lets in-flight requests finish, closes WebSockets and the database. */
  stop(): Promise<void>;
  readonly url: string;
}

/**
 * One server instance: the database and pub/sub, the domain operations made from them (each
 * given only what it uses), and the GraphQL server over HTTP, SSE and WebSockets.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const rootLogger = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const logger = yogaLogger(rootLogger);
  const metrics = createMetrics();
  const secrets = await loadSecrets(config);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    progress: options.progress,
    embedded: options.embeddedDatabase,
  });
  options.progress?.(config.redisUrl ? `Pub/sub: Redis at ${new URL(config.redisUrl).host}` : "Pub/sub: in memory (no REDIS_URL)");
  const events = createAppPubSub({
    redisUrl: config.redisUrl,
    channelPrefix: config.redisChannelPrefix,
    logger,
    observe: {
      published: (channel) => metrics.eventsPublished.inc({ channel }),
      received: (channel) => metrics.eventsReceived.inc({ channel }),
    },
  });
  const { pubsub, connection } = events;
  const { prisma } = database;
  const now = options.now ?? (() => new Date());
  const hashKey = secrets.apiKeyHashSecret;
  const environment = config.apiKeys.environment;

  const tokens = createSessionTokens({ secret: secrets.jwtSecret, issuer: config.jwt.issuer, audience: config.jwt.audience, now });
  const sessionCache = createSessionCache({ pubsub, connection });
  const responseCache = createResponseCache({
    pubsub,
    connection,
    ttlMs: config.responseCacheTtlMs,
    observe: { lookup: (hit) => metrics.responseCacheLookups.inc({ result: hit ? "hit" : "miss" }) },
  });
  const sessions = createSessions({ prisma, tokens, cache: sessionCache, now, ttlSeconds: config.jwt.ttlSeconds });
  const credentialAuth = createServiceCredentialAuth({ prisma, pubsub, connection, hashKey });
  const apiKeyVerifier = createApiKeyVerifier({
    prisma,
    pubsub,
    connection,
    hashKey,
    environment,
    now,
    changes: responseCache,
    observe: {
      verified: (code) => metrics.keyVerifications.inc({ code }),
      cacheLookup: (hit) => metrics.cacheLookups.inc({ result: hit ? "hit" : "miss" }),
    },
  });
  const loginThrottle = createLoginThrottle({
    redisUrl: config.redisUrl,
    keyPrefix: config.redisChannelPrefix,
    onRedisError: (error) => logger.warn(`Sign-in throttle: Redis unavailable, counting in process (${error.message})`),
    onThrottled: (attempt) => metrics.throttled.inc({ attempt }),
  });
  const usage = createUsage({
    prisma,
    verifier: apiKeyVerifier,
    pubsub,
    connection,
    hashKey,
    now,
    retentionDays: config.usageRetentionDays,
    changes: responseCache,
    onStored: (result) => {
      metrics.usageEventsAccepted.inc(result.accepted);
      for (const { code } of result.rejected) metrics.usageEventsRejected.inc({ code });
    },
  });
  // Live usage streams end at every change of the pub/sub's state (they may have missed events),
  // so Redis is given a moment to answer before anything is served; a Redis that is down at
  // start is reported (/readyz) and joined when it comes up.
  if (connection.state === "disconnected" && !(await reachState(connection, "connected", REDIS_START_WAIT_MS))) {
    logger.warn(`Pub/sub: Redis did not answer within ${REDIS_START_WAIT_MS / 1000} s; starting without it`);
  }
  const services: Services = {
    prisma,
    pubsub,
    now,
    sessions,
    loginThrottle,
    apiKeyVerifier,
    usage,
    apiKeys: createApiKeys({ prisma, verifier: apiKeyVerifier, pubsub, hashKey, environment, now }),
    userRights: createUserRights({ prisma, sessions, pubsub }),
    partners: createPartners({ prisma, verifier: apiKeyVerifier, pubsub, sessions, hashKey, environment, now }),
    invitations: createInvitations({ prisma, sessions, pubsub, hashKey, environment, now }),
    developerDocs: createDeveloperDocs({ prisma, pubsub, now }),
    serviceCredentials: createServiceCredentials({ prisma, pubsub, hashKey, environment, now }),
    links: config.links,
  };
  const authenticate = createBearerAuth({ sessions, serviceCredentials: credentialAuth });

  let stopping = false;
  const accessLog = createAccessLog({ logger: rootLogger, metrics });
  options.progress?.("GraphQL: building the schema");
  const graphql = createGraphQLServer({
    schema: buildSchema(),
    services,
    authenticate,
    config,
    database,
    connection,
    logger,
    accessLog,
    metrics,
    responseCache,
    stopping: () => stopping,
  });
  const http = createHttpServer(graphql.yoga as never, { maxBodyBytes: MAX_REQUEST_BYTES, accessLog });
  const webSockets = attachWebSockets(http.server, graphql.yoga as never, {
    authenticate,
    sessionStreams: graphql.sessionStreams,
    persistedOperations: graphql.persistedOperations,
    maxMessageBytes: MAX_REQUEST_BYTES,
    accessLog,
  });
  const metricsServer = config.metrics.port === undefined ? null : createMetricsServer({ registry: metrics.registry, token: config.metrics.token });
  Object.assign(metrics.sources, {
    openWebSockets: () => webSockets.openSockets,
    pubsubState: () => connection.state,
    pubsubPublishFailures: () => connection.publishFailures,
    databasePool: () => database.poolUse(),
  });

  let url = "";
  let metricsUrl: string | null = null;
  return {
    config,
    secrets,
    services,
    database,
    pubsub: connection,
    logger: rootLogger,
    metrics,
    get url() {
      return url;
    },
    get metricsUrl() {
      return metricsUrl;
    },
    async start(port = config.port, host = config.host) {
      url = await http.listen(port, host);
      if (metricsServer) metricsUrl = await metricsServer.listen(config.metrics.port!, host);
      return url;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      const { closed } = await http.drain(config.shutdownTimeoutMs);
      await webSockets.close();
      http.closeAll();
      await closed;
      await metricsServer?.close();
      await graphql.close();
      await Promise.all([apiKeyVerifier.close(), credentialAuth.close(), sessionCache.close(), responseCache.close(), usage.close()]);
      await loginThrottle.close();
      await events.close();
      await database.close();
    },
  };
}
