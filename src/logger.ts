import type { GraphQLError } from "graphql";
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFormat = "json" | "pretty";

/**
 * Fields that may hold a credential wherever they appear in a logged object. Nothing logs
 * variables, headers or connection params on purpose; this is the net under that rule.
 */
export const REDACTED_PATHS = [
  "password",
  "newPassword",
  "currentPassword",
  "token",
  "secret",
  "apiKeySecret",
  "authorization",
  "Authorization",
  "cookie",
  "jwtSecret",
  "apiKeyHashSecret",
  "*.password",
  "*.newPassword",
  "*.currentPassword",
  "*.token",
  "*.secret",
  "*.apiKeySecret",
  "*.authorization",
  "*.Authorization",
  "*.cookie",
  "variables",
  "*.variables",
  "connectionParams",
  "*.connectionParams",
  "headers.authorization",
  "headers.cookie",
];

/**
 * The server's logger: JSON lines (one object per line, ISO timestamps) when standard output is
 * not a terminal, readable colour when it is; `format` forces one. Lines written on behalf of a
 * request name its request id (`requestId`), given where the request is known (access-log.ts).
 */
export function createLogger(options: {
  level: LogLevel;
  format?: LogFormat;
  /** Where lines go (standard output by default); tests pass a stream they read. */
  destination?: DestinationStream;
}): Logger {
  // Silent writes nothing, so it never starts the pretty printer's worker thread.
  const format = options.level === "silent" ? "json" : (options.format ?? (process.stdout.isTTY ? "pretty" : "json"));
  const settings = {
    level: options.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
  };
  if (format === "pretty") {
    const transport = pino.transport({
      target: "pino-pretty",
      options: { destination: 1, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" },
    }) as DestinationStream;
    return pino(settings, options.destination ?? transport);
  }
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: false }));
}

/** The four methods graphql-yoga (and the modules written against it) log through. */
export interface YogaLogger {
  debug: (...args: unknown[]) => void;
  info: (...args: unknown[]) => void;
  warn: (...args: unknown[]) => void;
  error: (...args: unknown[]) => void;
}

/**
 * Unexpected errors already logged where their request was known (with its request id); Yoga's
 * own report of the same error, when it masks it, is then not written again.
 */
const reported = new WeakSet<object>();

/**
 * Logs an unexpected error once, at error level with its stack: the original error of a
 * GraphQLError that wraps one, with the field path; `requestId` when the request is known.
 */
export function logUnexpected(logger: Logger, error: Error, options: { requestId?: string; message?: string } = {}): void {
  const fields = errorFields(error);
  if (reported.has(fields.err)) return;
  reported.add(fields.err);
  logger.error(options.requestId ? { ...fields, requestId: options.requestId } : fields, options.message || error.message);
}

/** An error as a line shows it: the original error of a GraphQLError that wraps one, and its field path. */
function errorFields(error: Error): { err: Error; path?: string } {
  const graphQLError = error.name === "GraphQLError" ? (error as GraphQLError) : null;
  return {
    err: graphQLError?.originalError ?? error,
    ...(graphQLError?.path ? { path: graphQLError.path.join(".") } : {}),
  };
}

/**
 * Yoga's logger interface (`logger.error(error)`, `logger.warn("text", error)`) over pino: the
 * text becomes the message and an error its `err` field, with the stack. An unexpected error
 * Yoga masks arrives as a GraphQLError; its original error is logged, with the field path, unless
 * it was logged already with its request id.
 */
export function yogaLogger(logger: Logger): YogaLogger {
  const write = (level: "debug" | "info" | "warn" | "error") => (...args: unknown[]) => {
    if (!logger.isLevelEnabled(level)) return;
    const error = args.find((arg): arg is Error => arg instanceof Error);
    const text = args.filter((arg): arg is string => typeof arg === "string").join(" ");
    if (!error) {
      logger[level](text);
      return;
    }
    if (level === "error") {
      logUnexpected(logger, error, { message: text });
      return;
    }
    logger[level](errorFields(error), text || error.message);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
