import { GraphQLError, Kind, visit, type DocumentNode } from "graphql";

/** The stable `extensions.code` values clients can act on. Anything else is masked. */
export type ErrorCode =
  | "BAD_USER_INPUT"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "RATE_LIMITED";

const httpStatus: Partial<Record<ErrorCode, number>> = { UNAUTHENTICATED: 401, RATE_LIMITED: 429 };

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

/**
 * PostgreSQL text cannot hold U+0000, so input carrying it would fail deep in the database as an
 * unexpected error. It is refused up front instead, as the client's mistake.
 */
export function containsNulCharacter(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNulCharacter);
  if (value && typeof value === "object") return Object.values(value).some(containsNulCharacter);
  return false;
}

export const nulCharacterError = () => badInput("Text may not contain the NUL character (U+0000)");

/** Whether a parsed operation (its string literals) or its variables carry U+0000. */
export function operationContainsNul(document: DocumentNode, variables: unknown): boolean {
  let found = containsNulCharacter(variables);
  if (!found) {
    visit(document, {
      [Kind.STRING]: (node) => {
        if (node.value.includes("\u0000")) found = true;
      },
    });
  }
  return found;
}
