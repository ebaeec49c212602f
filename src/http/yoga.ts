import type { IncomingMessage, ServerResponse } from "node:http";
import type { GraphQLSchema } from "graphql";
import { createYoga, type YogaLogger } from "graphql-yoga";
import { ANONYMOUS, bearerToken, type Caller } from "../auth/callers.js";
import type { Config } from "../config.js";
import type { Database } from "../db/index.js";
import { unauthenticated } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { PubSubConnection } from "../realtime/pubsub.js";
import type { Context, Services } from "../schema/context.js";
import type { AccessLog, RequestLog } from "./access-log.js";
import type { ResponseCache } from "./response-cache.js";
import { clientAddressResolver } from "./client-address.js";
import { corsOptions } from "./cors.js";
import { graphiql } from "./graphiql.js";
import { serveMetrics } from "./metrics.js";
import { codeClientErrors } from "./plugins/client-errors.js";
import { compiledGatewayOperations } from "./plugins/compiled-gateway.js";
import { compressedAnswers } from "./plugins/compressed-answers.js";
import { createLiveQueries } from "./plugins/live-queries.js";
import { refuseMalformedInput } from "./plugins/malformed-input.js";
import { createPersistedOperations, loadPersistedManifest } from "./plugins/persisted-operations.js";
import { precompressedGraphiQL } from "./plugins/precompressed-graphiql.js";
import { queryLimitPlugins } from "./plugins/query-limits.js";
import { readiness } from "./plugins/readiness.js";
import { isRestRequest, OPENAPI_PATH, REST_BASE_PATH, restApi } from "./plugins/rest-api.js";
import { restSelection } from "./plugins/rest-selection.js";
import { createSessionStreams } from "./plugins/session-streams.js";
import { swaggerUi } from "./plugins/swagger-ui.js";
import { REST_SELECTION } from "./rest/routes.js";
import { sharedSubscriptions } from "./plugins/shared-subscriptions.js";
import { connectionToken } from "./websocket.js";

export interface YogaServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  connectionParams?: Readonly<Record<string, unknown>>;
  /** Over WebSockets, whoever an operation's own token speaks for (already checked against the connection). */
  caller?: Caller;
  /** The request's (or WebSocket operation's) request id and access line (access-log.ts). */
  requestLog?: RequestLog;
}

/**
 * The GraphQL server over HTTP and SSE (WebSockets go through it too, see websocket.ts): the
 * schema, its plugins in the order they must run, and the context every operation gets.
 */
export function createGraphQLServer(options: {
  schema: GraphQLSchema;
  services: Services;
  authenticate: (token: string) => Promise<Caller | null>;
  config: Config;
  database: Database;
  connection: PubSubConnection;
  logger: YogaLogger;
  accessLog: Pick<AccessLog, "plugin" | "failed">;
  metrics: Pick<Metrics, "registry">;
  responseCache: Pick<ResponseCache, "plugins">;
  stopping: () => boolean;
}) {
  const { schema, services, config, logger } = options;
  const clientAddressOf = clientAddressResolver(config.trustProxy);
  const liveQueries = createLiveQueries({
    pubsub: services.pubsub,
    connection: options.connection,
    rootFields: Object.keys(schema.getQueryType()?.getFields() ?? {}),
  });
  const sessionStreams = createSessionStreams({
    pubsub: services.pubsub,
    connection: options.connection,
    prisma: services.prisma,
    now: services.now,
    logger,
  });

  const persistedOperations = createPersistedOperations({
    only: config.persistedOperations.only,
    manifest: config.persistedOperations.file ? loadPersistedManifest(config.persistedOperations.file) : new Map(),
  });

  const yoga = createYoga<YogaServerContext, Context>({
    schema,
    logging: logger,
    landingPage: false,
    healthCheckEndpoint: "/healthz",
    // Bodies are counted and bounded as they arrive, before Yoga sees them (request-body.ts);
    // Yoga's own bound would pipe every body through a second stream to count it again.
    maxRequestBodySize: false,
    cors: corsOptions(config.corsOrigins),
    // The API takes no file uploads: multipart bodies are not a way in.
    multipart: false,
    ...graphiql,
    // A persisted operation's hash becomes its document first. Input is checked before the
    // limits, and both before anything runs. Session streams wrap what the live-query store
    // returns, so logout also ends `@live` streams.
    plugins: [
      readiness({ database: options.database, pubsub: options.connection, stopping: options.stopping }),
      // With METRICS_PORT, /metrics is served there instead (app.ts).
      ...(config.metrics.port === undefined ? [serveMetrics({ registry: options.metrics.registry, token: config.metrics.token })] : []),
      persistedOperations.plugin,
      precompressedGraphiQL(),
      refuseMalformedInput(),
      restSelection({ schema, isRestRequest, omit: REST_SELECTION.omit }),
      ...queryLimitPlugins(),
      codeClientErrors(),
      // After codeClientErrors, so that it sees client errors already coded.
      options.accessLog.plugin,
      liveQueries.plugin,
      // Before session streams, which then end each subscriber's own stream, not its group's.
      sharedSubscriptions({ backlogBytes: config.liveBacklogBytes, logger }),
      sessionStreams.plugin,
      // Queries answered from memory; after the plugins that refuse or end an operation, so a
      // cached answer passes the same checks.
      ...options.responseCache.plugins,
      // After the plugins that choose how an operation executes: recordUsage and verifyApiKey run compiled.
      compiledGatewayOperations(),
      // REST under /api (SOFA), through the plugins above; its Swagger UI answers first.
      swaggerUi({ endpoint: `${REST_BASE_PATH}/docs`, openApiPath: OPENAPI_PATH }),
      restApi({ schema, logger }),
      // Last: it compresses the response the plugins above have settled on.
      compressedAnswers(),
    ],
    // Unexpected errors are masked as "Unexpected error." and logged; client errors reach the
    // masking already coded (codeClientErrors), so they are neither masked nor logged.
    maskedErrors: true,
    context: async (initial): Promise<Context> => {
      const request = initial.connectionParams ? null : initial.request;
      const token = initial.connectionParams
        ? connectionToken(initial.connectionParams)
        : bearerToken(initial.request.headers.get("authorization"));
      let caller: Caller | null;
      try {
        caller = initial.caller ?? (token ? await options.authenticate(token) : ANONYMOUS);
      } catch (error) {
        // A fault reading the caller (the database gone): logged here, where the request is known.
        options.accessLog.failed(initial, error);
        throw error;
      }
      if (!caller) throw unauthenticated("The token is invalid, or its session or credential has ended");
      // Over WebSockets `req` is the upgrade request.
      const clientAddress = clientAddressOf(initial.req);
      return { services, prisma: services.prisma, ...caller, request, clientAddress, authenticatedNow: new Set() };
    },
  });

  return {
    yoga,
    sessionStreams,
    persistedOperations,
    async close() {
      await yoga.dispose();
      await Promise.all([liveQueries.close(), sessionStreams.close()]);
    },
  };
}
