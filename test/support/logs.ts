import { Writable } from "node:stream";
import { createLogger, type Logger, type LogLevel } from "../../src/logger.js";

/** One JSON log line as the server wrote it. */
export interface LogLine {
  level: number;
  msg?: string;
  requestId?: string;
  err?: { message: string; stack?: string; type?: string };
  [field: string]: unknown;
}

export const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** A server logger writing JSON lines into memory, as it would write them to standard output. */
export function captureLogs(level: LogLevel = "debug"): { logger: Logger; text(): string; lines(): LogLine[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = createLogger({ level, format: "json", destination });
  const text = () => chunks.join("");
  return {
    logger,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as LogLine),
  };
}
