import type { Server as HttpServer } from "node:http";
import { GraphQLError, type ExecutionArgs } from "graphql";
import { CloseCode } from "graphql-ws";
import { useServer, type Extra } from "graphql-ws/use/ws";
import type { GraphQLParams, YogaServerInstance } from "graphql-yoga";
import { WebSocketServer, type WebSocket } from "ws";
import { bearerToken, type Caller } from "../auth/callers.js";
import { forbidden, unauthenticated } from "../errors.js";
import type { AccessLog } from "./access-log.js";
import type { PersistedOperations } from "./plugins/persisted-operations.js";
import { streamOwner, type SessionStreams } from "./plugins/session-streams.js";

/** Close code sent to a WebSocket whose session ended (logout) or whose service credential was revoked. */
export const SESSION_ENDED_CLOSE_CODE = CloseCode.Unauthorized;

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

type OperationLog = ReturnType<AccessLog["webSocketOperation"]>;
/** Each socket's operations in progress, by operation id, until their access line is written. */
type SocketExtra = Extra & { caller?: Caller; operations?: Map<string, OperationLog> };

/** The session token a graphql-ws client sent: `{ authorization: "Bearer …" }` or `{ token: "…" }`. */
export function connectionToken(params: Readonly<Record<string, unknown>> | undefined): string | null {
  if (!params) return null;
  if (typeof params.token === "string" && params.token.length > 0) return params.token;
  return bearerToken(params.authorization ?? params.Authorization);
}

/**
 * The token of one operation: `payload.extensions.headers.Authorization` of a subscribe message
 * (the header name in any case), where GraphiQL puts its Headers tab.
 */
export function operationToken(extensions: Readonly<Record<string, unknown>> | null | undefined): string | null {
  const headers = extensions?.headers;
  if (typeof headers !== "object" || headers === null) return null;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === "authorization") return bearerToken(value);
  }
  return null;
}

/** Whether an operation's caller is whoever the connection signed in as (any caller, on an anonymous connection). */
function withinConnection(connection: Caller | undefined, operation: Caller): boolean {
  if (connection?.viewer) return operation.viewer?.id === connection.viewer.id;
  if (connection?.service) return operation.service?.id === connection.service.id;
  return true;
}

/**
 * graphql-ws on the GraphQL endpoint of the HTTP server, executing through Yoga's envelop so
 * that plugins, context and error masking are the same as over HTTP and SSE.
 */
export function attachWebSockets(
  httpServer: HttpServer,
  yoga: YogaServerInstance<Record<string, unknown>, Record<string, unknown>>,
  options: {
    /** Whoever a bearer token speaks for, or null when it authenticates nobody. */
    authenticate: (token: string) => Promise<Caller | null>;
    sessionStreams: Pick<SessionStreams, "track">;
    /** Automatic or manifest-only persisted operations, as over HTTP. */
    persistedOperations: Pick<PersistedOperations, "resolve">;
    maxMessageBytes: number;
    accessLog: Pick<AccessLog, "webSocketOperation">;
  },
) {
  // A message over maxPayload closes its socket with 1009 (message too big) before it is parsed.
  const wss = new WebSocketServer({ server: httpServer, path: yoga.graphqlEndpoint, maxPayload: options.maxMessageBytes });

  const disposable = useServer<Record<string, unknown>, { caller?: Caller }>(
    {
      onConnect: async (ctx) => {
        const token = connectionToken(ctx.connectionParams);
        if (!token) return true;
        const caller = await options.authenticate(token);
        // A token that does not authenticate is refused rather than treated as signed out.
        if (!caller) return false;
        ctx.extra.caller = caller;
        const owner = streamOwner(caller);
        if (!owner) return true;
        // The socket closes when its session or credential ends, on whichever instance that happened.
        const socket: WebSocket = ctx.extra.socket;
        const untrack = options.sessionStreams.track(owner, () =>
          socket.close(SESSION_ENDED_CLOSE_CODE, owner.kind === "session" ? "Session ended" : "Credential revoked"),
        );
        socket.once("close", untrack);
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const extra = ctx.extra as SocketExtra;
        const operation = options.accessLog.webSocketOperation(extra.request, id);
        (extra.operations ??= new Map()).set(id, operation);
        // An operation may carry its own token (GraphiQL's Headers tab), checked like the
        // connection's; it may narrow to another session of the same caller but never widen:
        // on a signed-in connection, a token for anyone else is refused.
        let caller: Caller | undefined;
        const token = operationToken(payload.extensions);
        if (token) {
          caller = (await options.authenticate(token)) ?? undefined;
          if (!caller) return [unauthenticated("The operation's token is invalid, or its session or credential has ended")];
          if (!withinConnection(extra.caller, caller)) {
            return [forbidden("An operation's token must speak for whoever the connection signed in as")];
          }
        }
        let params: GraphQLParams;
        try {
          params = await options.persistedOperations.resolve(payload);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: extra.request,
          socket: extra.socket,
          params,
          connectionParams: ctx.connectionParams ?? {},
          caller,
          request: null,
          requestLog: operation.log,
        });
        const document = enveloped.parse(params.query ?? "");
        const errors = enveloped.validate(enveloped.schema, document);
        if (errors.length > 0) return errors;
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe } satisfies EnvelopedRoot,
        };
        return args;
      },
      onError: (ctx, id, _payload, errors) => {
        const operations = (ctx.extra as SocketExtra).operations;
        operations?.get(id)?.end(errors);
        operations?.delete(id);
      },
      onComplete: (ctx, id) => {
        const operations = (ctx.extra as SocketExtra).operations;
        operations?.get(id)?.end();
        operations?.delete(id);
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
    },
    wss,
  );

  return {
    get openSockets() {
      return wss.clients.size;
    },
    /** Closes every socket with 1001 (going away) and stops accepting new ones. */
    async close() {
      await disposable.dispose();
    },
  };
}
