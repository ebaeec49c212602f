import { GraphQLError } from "graphql";

/** The stable `extensions.code` values clients can act on. Anything else is masked. */
export type ErrorCode =
  | "BAD_USER_INPUT"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "RATE_LIMITED"
  // Persisted operations: a hash the server does not know (send the query with it, under APQ),
  // a query whose hash is not the one sent, a document refused where only persisted ones run.
  | "PERSISTED_QUERY_NOT_FOUND"
  | "PERSISTED_QUERY_MISMATCH"
  | "PERSISTED_QUERY_ONLY"
  /** A live subscriber fell too far behind; its stream ended (`extensions.dropped`: events not sent). */
  | "EVENTS_DROPPED";

const httpStatus: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
  RATE_LIMITED: 429,
  PERSISTED_QUERY_NOT_FOUND: 404,
  PERSISTED_QUERY_MISMATCH: 400,
  PERSISTED_QUERY_ONLY: 400,
};

export function clientError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
  const status = httpStatus[code];
  return new GraphQLError(message, {
    extensions: { code, ...extensions, ...(status ? { http: { status } } : {}) },
  });
}

export const badInput = (message: string, extensions?: Record<string, unknown>) =>
  clientError("BAD_USER_INPUT", message, extensions);
export const unauthenticated = (message = "Sign in to do this") => clientError("UNAUTHENTICATED", message);
export const forbidden = (message = "You are not allowed to do this") => clientError("FORBIDDEN", message);
export const notFound = (message: string) => clientError("NOT_FOUND", message);
export const conflict = (message: string, extensions?: Record<string, unknown>) =>
  clientError("CONFLICT", message, extensions);

/** Prisma's unique-constraint violation, raised when a concurrent write won the race. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "P2002";
}
