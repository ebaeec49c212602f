import { randomBytes } from "node:crypto";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { createClient, type Client, type ClientOptions } from "graphql-ws";
import WebSocket from "ws";
import { createApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";
import { IN_MEMORY, startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/db/embedded.js";
import type { PubSubState } from "../../src/realtime/pubsub.js";
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase } from "./database.js";
import { startStatementProxy, type StatementProxy } from "./pg-proxy.js";

export interface GraphQLResponse<TData = Record<string, unknown>> {
  data?: TData | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
}

export interface TestServer {
  app: App;
  url: string;
  config: Config;
  /** POSTs one operation (text, or a typed document from test/generated); `token` goes in `Authorization: Bearer`. */
  gql<TData = Record<string, any>, TVariables = Record<string, unknown>>(
    query: string | TypedDocumentNode<TData, TVariables>,
    variables?: TVariables,
    token?: string,
  ): Promise<GraphQLResponse<TData> & { status: number }>;
  /** A graphql-ws client on the server's endpoint; closed by `close()`. */
  ws(options?: Partial<ClientOptions>): Client;
  /** With `watchStatements`: what the server ran against its database. */
  statements?: StatementProxy;
  close(): Promise<void>;
}

export interface TestServerOptions extends AppOptions {
  /** Environment overrides (strings, as the process environment would give them). */
  env?: Record<string, string | undefined>;
  /** Use this database (e.g. a second instance on the same one) instead of a fresh one. */
  database?: TestDatabase;
  /** Always the embedded database, even when TEST_DATABASE_URL is set. */
  embedded?: boolean;
  /** Carry events over TEST_REDIS_URL (the caller skips when it is unset). */
  redis?: boolean;
  /**
   * Put a statement-watching proxy between the server and its (fresh) database, so a test sees
   * the SQL the server runs (`server.statements`); the embedded database is served on loopback
   * for that, with one connection, as the server itself uses it.
   */
  watchStatements?: boolean;
}

/** Secrets shared by instances that should accept each other's tokens and keys. */
export const sharedSecrets = () => ({
  JWT_SECRET: randomBytes(32).toString("base64url"),
  API_KEY_HASH_SECRET: randomBytes(32).toString("base64url"),
});

/** Starts the real server in-process on a free loopback port, on a fresh database. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const ownsDatabase = !options.database;
  let database = options.database ?? (await createTestDatabase({ embedded: options.embedded }));
  let statements: StatementProxy | undefined;
  let embedded: EmbeddedPostgres | undefined;
  if (options.watchStatements) {
    if (!database.url) embedded = await startEmbeddedPostgres(IN_MEMORY);
    statements = await startStatementProxy(database.url ?? embedded!.url);
    database = { url: statements.url, drop: database.drop };
  }
  const config = loadConfig({
    DATA_DIR: IN_MEMORY,
    LOG_LEVEL: "silent",
    SEED_DEMO: "false",
    ...(database.url ? { DATABASE_URL: database.url, ...sharedSecrets() } : {}),
    ...(embedded ? { DATABASE_POOL_SIZE: "1" } : {}),
    ...(options.redis && TEST_REDIS_URL
      ? { REDIS_URL: TEST_REDIS_URL, REDIS_CHANNEL_PREFIX: `pp-test-${randomBytes(6).toString("hex")}:` }
      : {}),
    ...options.env,
  });
  const app = await createApp(config, options);
  const url = await app.start(0, "127.0.0.1");
  const clients: Client[] = [];

  return {
    app,
    url,
    config,
    async gql(query, variables, token) {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/graphql-response+json, application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query: typeof query === "string" ? query : print(query), variables }),
      });
      return { status: response.status, ...((await response.json()) as GraphQLResponse<any>) };
    },
    ws(clientOptions = {}) {
      const client = createClient({
        url: url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        ...clientOptions,
      });
      clients.push(client);
      return client;
    },
    statements,
    async close() {
      await Promise.allSettled(clients.map((client) => client.dispose()));
      await app.stop();
      await statements?.close();
      if (ownsDatabase) await database.drop();
      await embedded?.close();
    },
  };
}

/** The `extensions.code` of each error, in order. */
export const errorCodes = (response: GraphQLResponse<unknown>) =>
  (response.errors ?? []).map((error) => error.extensions?.code);

/** Resolves once the instance's pub/sub is in that state (the state /readyz reports). */
export function pubsubReaches(server: TestServer, wanted: PubSubState): Promise<void> {
  if (server.app.pubsub.state === wanted) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = server.app.pubsub.onStateChange((state) => {
      if (state !== wanted) return;
      stop();
      resolve();
    });
  });
}
