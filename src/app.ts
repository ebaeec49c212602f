import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError } from "graphql";
import { PothosValidationError } from "@pothos/core";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import { createLogger, createYoga, maskError, type Plugin } from "graphql-yoga";
import { createApiKeyVerifier } from "./auth/api-key-verifier.js";
import { clientAddressResolver } from "./auth/client-address.js";
import { createLoginThrottle } from "./auth/login-throttle.js";
import { loadSecrets } from "./auth/secrets.js";
import { createServiceCredentialAuth } from "./auth/service-credentials.js";
import { authenticateBearer, bearerToken } from "./auth/sessions.js";
import { createSessionTokens } from "./auth/session-token.js";
import type { Config } from "./config.js";
import type { Context, Services } from "./context.js";
import { openDatabase, type Database } from "./db/index.js";
import { createLiveQueries } from "./realtime/live-queries.js";
import { queryLimitPlugins } from "./query-limits.js";
import { readiness } from "./readiness.js";
import { createAppPubSub, type PubSubConnection } from "./realtime/pubsub.js";
import { createSessionStreams } from "./realtime/session-streams.js";
import { attachWebSockets, connectionToken } from "./realtime/websocket.js";
import { buildSchema } from "./schema/index.js";
import { clientError, nulCharacterError, operationContainsNul, unauthenticated } from "./schema/errors.js";

const GRAPHIQL_DEFAULT_QUERY = `# Sign in, then put the token in the Headers tab:
#   { "Authorization": "Bearer <token>" }
mutation Login {
  login(input: { login: "admin", password: "the demo password printed at start" }) {
    token
    user { username role }
  }
}

query Me {
  viewer { username email role partner { name } }
}
`;

/** Requests larger than this are refused before they are parsed. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

export interface AppOptions {
  /** The clock; tests inject one to move time without sleeping. */
  now?: () => Date;
}

export interface App {
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

interface YogaServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  connectionParams?: Readonly<Record<string, unknown>>;
}

export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = createLogger(config.logLevel);
  const secrets = await loadSecrets(config);
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const pubsubHandle = createAppPubSub({ redisUrl: config.redisUrl, channelPrefix: config.redisChannelPrefix, logger });
  const now = options.now ?? (() => new Date());
  const services: Services = {
    config,
    prisma: database.prisma,
    pubsub: pubsubHandle.pubsub,
    secrets,
    tokens: createSessionTokens({ secret: secrets.jwtSecret, issuer: config.jwt.issuer, audience: config.jwt.audience }),
    now,
    loginThrottle: createLoginThrottle({
      redisUrl: config.redisUrl,
      keyPrefix: config.redisChannelPrefix,
      onRedisError: (error) => logger.warn(`Sign-in throttle: Redis unavailable, counting in process (${error.message})`),
    }),
    serviceCredentials: createServiceCredentialAuth({
      prisma: database.prisma,
      pubsub: pubsubHandle.pubsub,
      connection: pubsubHandle.connection,
      hashKey: secrets.apiKeyHashSecret,
    }),
    apiKeyVerifier: createApiKeyVerifier({
      prisma: database.prisma,
      pubsub: pubsubHandle.pubsub,
      hashKey: secrets.apiKeyHashSecret,
      environment: config.apiKeys.environment,
      now,
    }),
  };

  const clientAddressOf = clientAddressResolver(config.trustProxy);
  const liveQueries = createLiveQueries(services.pubsub);
  const sessionStreams = createSessionStreams({
    pubsub: services.pubsub,
    connection: pubsubHandle.connection,
    prisma: database.prisma,
    now: services.now,
    logger,
  });
  let stopping = false;
  const yoga = createYoga<YogaServerContext, Context>({
    schema: buildSchema(),
    logging: logger,
    landingPage: false,
    graphiql: { subscriptionsProtocol: "WS", title: "Partner Portal", defaultQuery: GRAPHIQL_DEFAULT_QUERY },
    // GraphiQL's assets are served from the package, so it works without reaching a CDN.
    renderGraphiQL,
    // Session streams wrap what the live-query store returns, so logout also ends `@live` streams.
    plugins: [
      readiness({ database, pubsub: pubsubHandle.connection, stopping: () => stopping }),
      limitRequestSize(MAX_REQUEST_BYTES),
      refuseNulCharacters(),
      ...queryLimitPlugins(),
      codeVariableErrors(),
      liveQueries.plugin,
      sessionStreams.plugin,
    ],
    maskedErrors: {
      // Pothos's own argument checks (malformed global ids, ids of the wrong type, bad paging
      // arguments) are the client's mistake: say so. Everything else unexpected stays masked.
      maskError: (error, message, isDev) => {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (error instanceof GraphQLError && original instanceof PothosValidationError) {
          return new GraphQLError(original.message, {
            nodes: error.nodes,
            path: error.path,
            extensions: { code: "BAD_USER_INPUT" },
          });
        }
        return maskError(error, message, isDev);
      },
    },
    context: async (initial): Promise<Context> => {
      const request = initial.connectionParams ? null : initial.request;
      const token = initial.connectionParams
        ? connectionToken(initial.connectionParams)
        : bearerToken(initial.request.headers.get("authorization"));
      const caller = token ? await authenticateBearer(services, token) : { viewer: null, service: null };
      if (!caller) throw unauthenticated("The token is invalid, or its session or credential has ended");
      // Over WebSockets `req` is the upgrade request.
      const clientAddress = clientAddressOf(initial.req);
      return { services, prisma: services.prisma, ...caller, request, clientAddress, authenticatedNow: new Set() };
    },
  });

  const inFlight = new Set<ServerResponse>();
  let drained: (() => void) | undefined;

  const httpServer = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (path === "/") {
      res.writeHead(302, { location: yoga.graphqlEndpoint }).end();
      return;
    }
    // Streams (SSE subscriptions) run until closed; shutdown ends them instead of waiting.
    if (!(req.headers.accept ?? "").includes("text/event-stream")) {
      inFlight.add(res);
      res.once("close", () => {
        inFlight.delete(res);
        if (inFlight.size === 0) drained?.();
      });
    }
    await yoga.handle(req, res);
  });
  const webSockets = attachWebSockets(httpServer, yoga as never, services, sessionStreams);

  let url = "";
  return {
    services,
    database,
    pubsub: pubsubHandle.connection,
    get url() {
      return url;
    },
    start(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(port, host, () => {
          const address = httpServer.address() as AddressInfo;
          const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
          url = `http://${shownHost}:${address.port}${yoga.graphqlEndpoint}`;
          resolve(url);
        });
      });
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      if (inFlight.size > 0) {
        const allDone = new Promise<void>((resolve) => (drained = resolve));
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.shutdownTimeoutMs)));
        await Promise.race([allDone, timeout]);
        clearTimeout(timer);
      }
      await webSockets.close();
      httpServer.closeAllConnections();
      await closed;
      await yoga.dispose();
      await Promise.all([liveQueries.close(), sessionStreams.close()]);
      await services.apiKeyVerifier.close();
      await services.serviceCredentials.close();
      await services.loginThrottle.close();
      await pubsubHandle.close();
      await database.close();
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/**
 * Variable values that do not coerce (an unknown enum value such as an undeclared API-key scope, a
 * string for an Int, a missing required variable) are the client's input error: BAD_USER_INPUT.
 */
function codeVariableErrors(): Plugin {
  return {
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if (Symbol.asyncIterator in result || !result.errors || result.data != null) return;
        const isVariableError = (error: GraphQLError) =>
          !error.path && !error.extensions?.code && error.message.startsWith('Variable "$');
        if (!result.errors.some(isVariableError)) return;
        setResult({
          ...result,
          errors: result.errors.map((error) =>
            isVariableError(error)
              ? new GraphQLError(error.message, {
                  nodes: error.nodes,
                  originalError: error.originalError,
                  extensions: { ...error.extensions, code: "BAD_USER_INPUT" },
                })
              : error,
          ),
        });
      },
    }),
  };
}

/** Refuses operations whose string literals or variables carry U+0000, over every transport. */
function refuseNulCharacters(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (operationContainsNul(args.document, args.variableValues)) {
        setResultAndStopExecution({ errors: [nulCharacterError()] });
      }
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (operationContainsNul(args.document, args.variableValues)) {
        setResultAndStopExecution({ errors: [nulCharacterError()] });
      }
    },
  };
}

/** Refuses request bodies over the limit (by their declared length) with 413 before parsing. */
function limitRequestSize(maxBytes: number): Plugin {
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      const length = Number(request.headers.get("content-length") ?? 0);
      if (length > maxBytes) {
        const error = clientError("BAD_USER_INPUT", `Request body exceeds ${maxBytes} bytes`);
        endResponse(
          new fetchAPI.Response(JSON.stringify({ errors: [error.toJSON()] }), {
            status: 413,
            headers: { "content-type": "application/json" },
          }),
        );
      }
    },
  };
}
