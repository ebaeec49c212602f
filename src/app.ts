import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError, type DocumentNode } from "graphql";
import { PothosValidationError } from "@pothos/core";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import { createLogger, createYoga, handleStreamOrSingleExecutionResult, type Plugin, type YogaLogger } from "graphql-yoga";
import { createApiKeyVerifier } from "./auth/api-key-verifier.js";
import { clientAddressResolver } from "./auth/client-address.js";
import { createSessionCache } from "./auth/session-cache.js";
import { createLoginThrottle } from "./auth/login-throttle.js";
import { loadSecrets } from "./auth/secrets.js";
import { createServiceCredentialAuth } from "./auth/service-credentials.js";
import { authenticateBearer, bearerToken } from "./auth/sessions.js";
import { createSessionTokens } from "./auth/session-token.js";
import type { Config } from "./config.js";
import type { Context, Services } from "./context.js";
import { openDatabase, type Database } from "./db/index.js";
import { readBodyWithin } from "./http/request-body.js";
import { createLiveQueries } from "./realtime/live-queries.js";
import { queryLimitPlugins } from "./query-limits.js";
import { readiness } from "./readiness.js";
import { createAppPubSub, type PubSubConnection } from "./realtime/pubsub.js";
import { createSessionStreams } from "./realtime/session-streams.js";
import { attachWebSockets, connectionToken } from "./realtime/websocket.js";
import { buildSchema } from "./schema/index.js";
import { clientError, findOperationInputProblem, inputProblemError, unauthenticated } from "./schema/errors.js";

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
  const logger = options.logger ?? createLogger(config.logLevel);
  const secrets = await loadSecrets(config);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    progress: options.progress,
  });
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
    sessionCache: createSessionCache({ pubsub: pubsubHandle.pubsub, connection: pubsubHandle.connection }),
    apiKeyVerifier: createApiKeyVerifier({
      prisma: database.prisma,
      pubsub: pubsubHandle.pubsub,
      connection: pubsubHandle.connection,
      hashKey: secrets.apiKeyHashSecret,
      environment: config.apiKeys.environment,
      now,
    }),
  };

  const clientAddressOf = clientAddressResolver(config.trustProxy);
  const schema = buildSchema();
  const liveQueries = createLiveQueries({
    pubsub: services.pubsub,
    connection: pubsubHandle.connection,
    rootFields: Object.keys(schema.getQueryType()?.getFields() ?? {}),
  });
  const sessionStreams = createSessionStreams({
    pubsub: services.pubsub,
    connection: pubsubHandle.connection,
    prisma: database.prisma,
    now: services.now,
    logger,
  });
  let stopping = false;
  const yoga = createYoga<YogaServerContext, Context>({
    schema,
    logging: logger,
    landingPage: false,
    // Bodies are counted and bounded as they arrive, before Yoga sees them (http/request-body.ts);
    // Yoga's own bound would pipe every body through a second stream to count it again.
    maxRequestBodySize: false,
    cors: corsOptions(config.corsOrigins),
    // The API takes no file uploads: multipart bodies are not a way in.
    multipart: false,
    graphiql: { subscriptionsProtocol: "WS", title: "Partner Portal", defaultQuery: GRAPHIQL_DEFAULT_QUERY },
    // GraphiQL's assets are served from the package, so it works without reaching a CDN.
    renderGraphiQL,
    // Input is checked before the limits, and both before anything runs. Session streams wrap
    // what the live-query store returns, so logout also ends `@live` streams.
    plugins: [
      readiness({ database, pubsub: pubsubHandle.connection, stopping: () => stopping }),
      refuseMalformedInput(),
      ...queryLimitPlugins(),
      codeClientErrors(),
      liveQueries.plugin,
      sessionStreams.plugin,
    ],
    // Unexpected errors are masked as "Unexpected error." and logged; client errors reach the
    // masking already coded (codeClientErrors), so they are neither masked nor logged.
    maskedErrors: true,
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
    if (await readBodyWithin(req, res, MAX_REQUEST_BYTES)) await yoga.handle(req, res);
  });
  const webSockets = attachWebSockets(httpServer, yoga as never, services, sessionStreams, {
    maxMessageBytes: MAX_REQUEST_BYTES,
  });

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
      await services.sessionCache.close();
      await services.loginThrottle.close();
      await pubsubHandle.close();
      await database.close();
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const CORS_METHODS = ["GET", "POST", "OPTIONS"];
const CORS_HEADERS = ["authorization", "content-type", "accept"];

/**
 * Which web pages may call the API from a browser. Never with credentials: sign-in is by bearer
 * token, so no cookie should ride along. An origin that is not allowed gets no CORS headers at all
 * (not `null`, which sandboxed pages would match), so the browser keeps the answer from it.
 */
function corsOptions(origins: Config["corsOrigins"]) {
  const common = { methods: CORS_METHODS, allowedHeaders: CORS_HEADERS, credentials: false, maxAge: 600 };
  return (request: Request) => {
    const origin = request.headers.get("origin");
    if (!origin) return false as const;
    if (origins === "*" || origins.includes(origin)) return { ...common, origin: [origin] };
    return false as const;
  };
}

/**
 * The client's mistakes, coded before Yoga's error masking sees them, so they are answered as
 * such and not logged as server errors:
 * - variable values that do not coerce (an unknown enum value, a string for an Int, a number out
 *   of Int range, a missing required variable): BAD_USER_INPUT;
 * - Pothos's own argument checks (a malformed global id, an id of the wrong type): BAD_USER_INPUT.
 */
function codeClientErrors(): Plugin {
  const isVariableError = (error: GraphQLError) =>
    !error.path && !error.extensions?.code && error.message.startsWith('Variable "$');
  const isPothosValidation = (error: GraphQLError) => error.originalError instanceof PothosValidationError;
  const recode = (error: GraphQLError) =>
    isVariableError(error) || isPothosValidation(error)
      ? new GraphQLError(error.message, {
          nodes: error.nodes,
          path: error.path,
          extensions: { ...error.extensions, code: "BAD_USER_INPUT" },
        })
      : error;
  const onResult: Parameters<typeof handleStreamOrSingleExecutionResult>[1] = ({ result, setResult }) => {
    const errors = result.errors?.map(recode);
    if (errors?.some((error, i) => error !== result.errors![i])) setResult({ ...result, errors });
  };
  return {
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, onResult) }),
    onSubscribe: () => ({ onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, onResult) }),
  };
}

/**
 * Refuses operations whose string literals or variables carry U+0000 or a lone surrogate, or
 * whose variables are nested deeper than any input of the API, over every transport, before any
 * other code walks them.
 */
function refuseMalformedInput(): Plugin {
  const check = (args: { document: DocumentNode; variableValues?: unknown }, stop: (result: { errors: GraphQLError[] }) => void) => {
    const problem = findOperationInputProblem(args.document, args.variableValues);
    if (problem) stop({ errors: [inputProblemError(problem)] });
  };
  return {
    onExecute: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
    onSubscribe: ({ args, setResultAndStopExecution }) => check(args, setResultAndStopExecution),
  };
}

