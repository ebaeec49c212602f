import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { getOperationAST, type ExecutionResult, type GraphQLError } from "graphql";
import { isAsyncIterable, maskError, type Plugin } from "graphql-yoga";
import { logUnexpected, type Logger } from "../logger.js";
import type { Metrics, Outcome } from "../metrics.js";
import type { Caller } from "../auth/callers.js";

/** What one access line says about an HTTP request or a WebSocket operation. */
interface AccessRecord {
  operationName: string | null;
  operationType: string | null;
  viewerId: string | null;
  serviceId: string | null;
  /** Codes of the errors answered (UNEXPECTED for masked ones), in order, without repeats. */
  errorCodes: string[];
}

/**
 * One HTTP request or WebSocket operation as the log names it: its request id, and what its access
 * line will say. Carried in Yoga's server context (`requestLog`), so every hook that logs on the
 * request's behalf finds it there (a context kept by the runtime, AsyncLocalStorage, would tax
 * every promise the server makes).
 */
export interface RequestLog {
  readonly requestId: string;
  readonly record: AccessRecord;
}

/** The request log a Yoga server context, or the GraphQL context made from it, carries. */
export const requestLogOf = (context: unknown): RequestLog | undefined =>
  (context as { requestLog?: RequestLog } | null | undefined)?.requestLog;

/** Whether Yoga's error masking hides this error from the client: it is then logged, as unexpected. */
const isMasked = (error: Error) => maskError(error, "Unexpected error.") !== error;

/** A request id a client or proxy may choose: short, and nothing that could forge a log line. */
const REQUEST_ID = /^[\w.:/+=@-]{1,128}$/;

/** The request id from `X-Request-Id` when it is a sane one, else a new one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && REQUEST_ID.test(value) ? value : randomUUID();
}

// Probes and scrapes are logged at debug level, so that they do not drown the access log.
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** Errors the client can act on carry a code; an error without one is unexpected (masked). */
const codeOf = (error: GraphQLError) => {
  const code = error.extensions?.code;
  return typeof code === "string" ? code : "UNEXPECTED";
};

function outcomeOf(errors: readonly GraphQLError[] | undefined): Outcome {
  if (!errors || errors.length === 0) return "ok";
  return errors.some((error) => codeOf(error) === "UNEXPECTED") ? "error" : "client_error";
}

/**
 * Access lines and operation metrics: one line per HTTP request (written when its response ends)
 * and one per WebSocket operation (when it completes), each with the request id every other
 * line written meanwhile carries too. Never variables, headers or connection params: only the
 * operation's name and type, the viewer's id, the status and the error codes.
 */
export function createAccessLog(options: { logger: Logger; metrics: Metrics }) {
  const { logger, metrics } = options;
  // Access lines are made here from fields that never hold a credential (ids, codes, the path
  // without its query), so they skip the logger's redaction, which costs more than the line.
  const accessLogger = logger.child({}, { redact: { paths: [] } });
  // A WebSocket's id (its upgrade request's), which its operations' ids start with.
  const connectionIds = new WeakMap<IncomingMessage, string>();
  const newLog = (requestId: string): RequestLog => ({
    requestId,
    record: { operationName: null, operationType: null, viewerId: null, serviceId: null, errorCodes: [] },
  });
  const describe = (record: AccessRecord) => ({
    operation: record.operationName,
    operationType: record.operationType,
    viewerId: record.viewerId,
    serviceId: record.serviceId,
    ...(record.errorCodes.length > 0 ? { errors: record.errorCodes } : {}),
  });

  /**
   * Notes a result's errors (as they are before Yoga masks them) on the access line. Client errors
   * are logged at debug, without stack; errors the masking will hide are logged at error, with the
   * stack, here where the request id is known (Yoga's own report of them is then skipped).
   */
  const noteErrors = (log: RequestLog | undefined, errors: readonly GraphQLError[] | undefined) => {
    for (const error of errors ?? []) {
      const code = codeOf(error);
      if (log && !log.record.errorCodes.includes(code)) log.record.errorCodes.push(code);
      const requestId = log ? { requestId: log.requestId } : {};
      if (code !== "UNEXPECTED") logger.debug({ code, path: error.path?.join("."), ...requestId }, `client error: ${error.message}`);
      else if (isMasked(error)) logUnexpected(logger, error, requestId);
    }
  };

  const started = (args: { document: Parameters<typeof getOperationAST>[0]; operationName?: string | null; contextValue: unknown }) => {
    const operation = getOperationAST(args.document, args.operationName);
    const name = operation?.name?.value ?? null;
    const type = operation?.operation ?? "query";
    const caller = args.contextValue as Partial<Caller>;
    const log = requestLogOf(args.contextValue);
    const record = log?.record;
    if (record) {
      record.operationName = name;
      record.operationType = type;
      record.viewerId = caller.viewer?.id ?? null;
      record.serviceId = caller.service?.id ?? null;
    }
    return { log, label: metrics.operationLabel(name), type, startedAt: performance.now() };
  };

  const finished = (operation: ReturnType<typeof started>, errors: readonly GraphQLError[] | undefined) => {
    noteErrors(operation.log, errors);
    const labels = { operation: operation.label, type: operation.type, outcome: outcomeOf(errors) };
    metrics.operations.inc(labels);
    metrics.operationDuration.observe(labels, (performance.now() - operation.startedAt) / 1000);
  };

  /** Counts a stream (subscription or live query) while it runs, and the results it sends. */
  const streaming = (operation: ReturnType<typeof started>, gauge: Metrics["activeSubscriptions"]) => {
    finished(operation, undefined);
    gauge.inc();
    return {
      onNext: ({ result }: { result: ExecutionResult }) => {
        metrics.streamedResults.inc({ operation: operation.label });
        noteErrors(operation.log, result.errors);
      },
      onEnd: () => gauge.dec(),
    };
  };

  /** Codes of errors answered before anything ran (a query that does not parse or validate, a bad token). */
  const noteUnexecuted = (log: RequestLog | undefined, errors: readonly GraphQLError[] | undefined) => {
    const record = log?.record;
    if (!record || record.operationType) return;
    for (const code of (errors ?? []).map(codeOf)) if (!record.errorCodes.includes(code)) record.errorCodes.push(code);
  };

  const plugin: Plugin = {
    onParams({ params, context }) {
      const record = requestLogOf(context)?.record;
      if (record) record.operationName = params.operationName ?? null;
    },
    // The name as the document gives it (most clients send none apart), for a request that fails
    // before it runs; onExecute sets it again for one that runs.
    onParse({ context }) {
      const record = requestLogOf(context)?.record;
      return ({ result }) => {
        if (record && result && !(result instanceof Error)) {
          record.operationName = getOperationAST(result, record.operationName)?.name?.value ?? record.operationName;
        }
      };
    },
    onResultProcess({ result, serverContext }) {
      if (isAsyncIterable(result)) return;
      const log = requestLogOf(serverContext);
      for (const single of Array.isArray(result) ? result : [result]) noteUnexecuted(log, single.errors);
    },
    onExecute({ args }) {
      const operation = started(args);
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return streaming(operation, metrics.activeLiveQueries);
          finished(operation, result.errors);
          return undefined;
        },
      };
    },
    onSubscribe({ args }) {
      const operation = started(args);
      return {
        onSubscribeResult({ result }) {
          if (isAsyncIterable(result)) return streaming(operation, metrics.activeSubscriptions);
          finished(operation, result.errors);
          return undefined;
        },
      };
    },
  };

  return {
    /** The Yoga plugin that fills in the access line and counts operations; after codeClientErrors. */
    plugin,

    /**
     * Serves one HTTP request under its request id (returned in `X-Request-Id`), then logs its
     * line. `handle` passes the request's log on to Yoga's server context.
     */
    async http(req: IncomingMessage, res: ServerResponse, handle: (log: RequestLog) => Promise<void>): Promise<void> {
      const log = newLog(requestIdFrom(req.headers["x-request-id"]));
      res.setHeader("x-request-id", log.requestId);
      const startedAt = performance.now();
      const path = (req.url ?? "/").split("?")[0]!;
      const stream = (req.headers.accept ?? "").includes("text/event-stream");
      res.once("close", () => {
        const seconds = (performance.now() - startedAt) / 1000;
        const method = req.method ?? "GET";
        metrics.httpRequests.inc({ method, status: String(res.statusCode) });
        if (!stream) metrics.httpDuration.observe({ method }, seconds);
        const line = {
          requestId: log.requestId,
          transport: "http",
          method,
          path,
          status: res.statusCode,
          durationMs: Math.round(seconds * 10_000) / 10,
          ...describe(log.record),
          ...(res.writableFinished ? {} : { aborted: true }),
        };
        if (QUIET_PATHS.has(path)) accessLogger.debug(line, "request");
        else accessLogger.info(line, "request");
      });
      await handle(log);
    },

    /**
     * A WebSocket operation's log, with its own request id (`<connection's X-Request-Id>/<operation
     * id>`), for its server context.
     */
    webSocketOperation(upgrade: IncomingMessage, operationId: string) {
      let connectionId = connectionIds.get(upgrade);
      if (!connectionId) connectionIds.set(upgrade, (connectionId = requestIdFrom(upgrade.headers["x-request-id"])));
      const log = newLog(`${connectionId}/${operationId}`);
      const startedAt = performance.now();
      let ended = false;
      return {
        log,
        /** Writes the access line, once: when the operation completed, or failed with `errors`. */
        end(errors?: readonly GraphQLError[]) {
          if (ended) return;
          ended = true;
          if (errors) noteErrors(log, errors);
          accessLogger.info(
            {
              requestId: log.requestId,
              transport: "ws",
              status: errors ? "error" : "complete",
              durationMs: Math.round(performance.now() - startedAt),
              ...describe(log.record),
            },
            "operation",
          );
        },
      };
    },

    /**
     * An error thrown before the operation ran (building its context: reading the caller), logged
     * with the request id when Yoga's masking will hide it.
     */
    failed(context: unknown, error: unknown): void {
      if (error instanceof Error && isMasked(error)) logUnexpected(logger, error, { requestId: requestLogOf(context)?.requestId });
    },
  };
}

export type AccessLog = ReturnType<typeof createAccessLog>;
