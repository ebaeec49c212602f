import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** How much of a started process's output is kept once it is ready (for error reports). */
const KEPT_OUTPUT = 64 * 1024;

export interface Started {
  child: ChildProcess;
  /** The first match of `ready` in the output (e.g. the URL the server printed). */
  match: RegExpExecArray;
  /** Milliseconds from spawn to that line. */
  startupMs: number;
  /** What the process has written: everything up to ready, then the latest 64 KiB or more (for error reports). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs an entry point in its own process (a TypeScript one through tsx's loader) and waits for a
 * line of its output to match `ready`.
 */
export function startScript(
  script: string,
  env: Record<string, string | undefined>,
  ready: RegExp,
  options: { timeoutMs?: number; nodeArgs?: string[] } = {},
): Promise<Started> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const started = performance.now();
  const loader = script.endsWith(".ts") ? ["--import", "tsx"] : [];
  const child = spawn(process.execPath, [...loader, ...(options.nodeArgs ?? []), script], {
    cwd: projectRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${script} did not start in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        child.stderr!.off("data", onData);
        // Keep draining, so a chatty process never blocks on a full pipe, but keep only the latest
        // output: a server's access lines under load would otherwise grow the load generator's
        // heap by tens of megabytes a row, and its garbage collection with it.
        const keep = (more: Buffer) => {
          output += more.toString();
          if (output.length > 2 * KEPT_OUTPUT) output = output.slice(-KEPT_OUTPUT);
        };
        child.stdout!.on("data", keep);
        child.stderr!.on("data", keep);
        resolve({ child, match, startupMs: performance.now() - started, output: () => output, stop });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready:\n${output}`));
    });
  });
}
