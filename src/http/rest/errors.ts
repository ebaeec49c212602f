import { GraphQLError } from "graphql";
import type { YogaLogger } from "graphql-yoga";
import type { ErrorCode } from "../../errors.js";

/** The body of every REST error: the first error's code and message, then every error. */
export interface RestErrorBody {
  code: string;
  message: string;
  errors: Array<{ message: string; path?: ReadonlyArray<string | number>; extensions: Record<string, unknown> }>;
}

const STATUS: Record<ErrorCode | "GRAPHQL_VALIDATION_FAILED", number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  BAD_USER_INPUT: 400,
  // Subscriptions have no REST route, nor do persisted operations; listed for completeness.
  EVENTS_DROPPED: 409,
  PERSISTED_QUERY_NOT_FOUND: 404,
  PERSISTED_QUERY_MISMATCH: 400,
  PERSISTED_QUERY_ONLY: 400,
  // A query limit (the generated operation with the request's page sizes).
  GRAPHQL_VALIDATION_FAILED: 400,
};

const UNEXPECTED = "Unexpected error.";

interface CodedError {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions: Record<string, unknown>;
  status: number;
}

/**
 * One error as the REST API shows it. Coded errors keep their code and extensions (less Yoga's
 * `http` hints); SOFA's own refusals of the request (a body that is not JSON, a value that does not
 * parse) are BAD_USER_INPUT 400; anything else is masked as the GraphQL endpoint masks it.
 */
function coded(error: unknown, logger: YogaLogger): CodedError {
  if (!(error instanceof GraphQLError)) {
    logger.error(error);
    return { message: UNEXPECTED, extensions: {}, status: 500 };
  }
  const { http, ...extensions } = error.extensions as { http?: { status?: number } } & Record<string, unknown>;
  const code = typeof extensions.code === "string" ? extensions.code : undefined;
  if (code && code in STATUS) {
    // A resolver's refusal of well-formed values is 422; values that did not even coerce to the
    // field's argument types (no path: nothing ran) are 400.
    const status = code === "BAD_USER_INPUT" && error.path ? 422 : STATUS[code as keyof typeof STATUS];
    return { message: error.message, path: error.path, extensions, status };
  }
  if (!code && http?.status === 400) {
    return { message: error.message, extensions: { code: "BAD_USER_INPUT" }, status: 400 };
  }
  if (error.message !== UNEXPECTED) logger.error(error.originalError ?? error);
  return { message: UNEXPECTED, path: error.path, extensions: {}, status: 500 };
}

/** SOFA's error handler: the status of the first error, its code in a JSON body. */
export function restErrorHandler(logger: YogaLogger) {
  return (errors: ReadonlyArray<unknown>): Response => {
    const all = errors.map((error) => coded(error, logger));
    const first = all[0] ?? { message: UNEXPECTED, extensions: {}, status: 500 };
    const headers = new Headers({ "content-type": "application/json; charset=utf-8" });
    const retryAfter = first.extensions.retryAfterSeconds;
    if (first.status === 429 && typeof retryAfter === "number") headers.set("retry-after", String(Math.ceil(retryAfter)));
    if (first.status === 401) headers.set("www-authenticate", "Bearer");
    const body: RestErrorBody = {
      code: typeof first.extensions.code === "string" ? first.extensions.code : "INTERNAL_SERVER_ERROR",
      message: first.message,
      errors: all.map(({ message, path, extensions }) => ({ message, ...(path ? { path } : {}), extensions })),
    };
    return new Response(JSON.stringify(body), { status: first.status, headers });
  };
}
