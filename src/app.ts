import { createLogger, type YogaLogger } from "graphql-yoga";
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
import { createApiKeys } from "./domain/api-keys.js";
import { createDeveloperDocs } from "./domain/developer-docs.js";
import { createPartners } from "./domain/partners.js";
import { createServiceCredentials } from "./domain/service-credentials.js";
import { createUserRights } from "./domain/users.js";
import { createHttpServer } from "./http/server.js";
import { attachWebSockets } from "./http/websocket.js";
import { createGraphQLServer } from "./http/yoga.js";
import { createAppPubSub, type PubSubConnection } from "./realtime/pubsub.js";
import type { Services } from "./schema/context.js";
import { buildSchema } from "./schema/index.js";
import { createUsage } from "./usage/index.js";

/** Request bodies and WebSocket messages larger than this are refused before they are parsed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

export interface AppOptions {
  /** The clock; tests inject one to move time without sleeping. */
  now?: () => Date;
  /** Where the server logs; by default Yoga's console logger at `config.logLevel`. */
  logger?: YogaLogger;
  /** Told each start-up step as it happens (the server prints them). */
  progress?: (step: string) => void;
}

export interface App {
  config: Config;
  secrets: ServerSecrets;
  services: Services;
  database: Database;
  /** Whether events cross instances right now (Redis up), as `/readyz` reports it. */
  pubsub: PubSubConnection;
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
  const logger = options.logger ?? createLogger(config.logLevel);
  const secrets = await loadSecrets(config);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    progress: options.progress,
  });
  const events = createAppPubSub({ redisUrl: config.redisUrl, channelPrefix: config.redisChannelPrefix, logger });
  const { pubsub, connection } = events;
  const { prisma } = database;
  const now = options.now ?? (() => new Date());
  const hashKey = secrets.apiKeyHashSecret;
  const environment = config.apiKeys.environment;

  const tokens = createSessionTokens({ secret: secrets.jwtSecret, issuer: config.jwt.issuer, audience: config.jwt.audience });
  const sessionCache = createSessionCache({ pubsub, connection });
  const sessions = createSessions({ prisma, tokens, cache: sessionCache, now, ttlSeconds: config.jwt.ttlSeconds });
  const credentialAuth = createServiceCredentialAuth({ prisma, pubsub, connection, hashKey });
  const apiKeyVerifier = createApiKeyVerifier({ prisma, pubsub, connection, hashKey, environment, now });
  const loginThrottle = createLoginThrottle({
    redisUrl: config.redisUrl,
    keyPrefix: config.redisChannelPrefix,
    onRedisError: (error) => logger.warn(`Sign-in throttle: Redis unavailable, counting in process (${error.message})`),
  });
  const usage = createUsage({
    prisma, verifier: apiKeyVerifier, pubsub, hashKey, now, retentionDays: config.usageRetentionDays,
  });
  const services: Services = {
    prisma,
    pubsub,
    now,
    sessions,
    loginThrottle,
    apiKeyVerifier,
    usage,
    apiKeys: createApiKeys({ prisma, verifier: apiKeyVerifier, pubsub, hashKey, environment, now }),
    userRights: createUserRights({ prisma, sessions }),
    partners: createPartners({ prisma, verifier: apiKeyVerifier, pubsub }),
    developerDocs: createDeveloperDocs({ prisma, pubsub, now }),
    serviceCredentials: createServiceCredentials({ prisma, pubsub, hashKey, environment, now }),
  };
  const authenticate = createBearerAuth({ sessions, serviceCredentials: credentialAuth });

  let stopping = false;
  const graphql = createGraphQLServer({
    schema: buildSchema(),
    services,
    authenticate,
    config,
    database,
    connection,
    logger,
    stopping: () => stopping,
  });
  const http = createHttpServer(graphql.yoga as never, { maxBodyBytes: MAX_REQUEST_BYTES });
  const webSockets = attachWebSockets(http.server, graphql.yoga as never, {
    authenticate,
    sessionStreams: graphql.sessionStreams,
    maxMessageBytes: MAX_REQUEST_BYTES,
  });

  let url = "";
  return {
    config,
    secrets,
    services,
    database,
    pubsub: connection,
    get url() {
      return url;
    },
    async start(port = config.port, host = config.host) {
      url = await http.listen(port, host);
      return url;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      const { closed } = await http.drain(config.shutdownTimeoutMs);
      await webSockets.close();
      http.closeAll();
      await closed;
      await graphql.close();
      await Promise.all([apiKeyVerifier.close(), credentialAuth.close(), sessionCache.close(), usage.close()]);
      await loginThrottle.close();
      await events.close();
      await database.close();
    },
  };
}
