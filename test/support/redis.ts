import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

/** Whether `redis-server` is installed here (tests of Redis outages need one of their own). */
export const HAS_REDIS_SERVER = spawnSync("redis-server", ["--version"]).status === 0;

/**
 * A redis-server of the test's own on a free loopback port, never the machine's shared one:
 * `stop()` kills it as a crash would, `start()` brings it back on the same port.
 */
export class OwnRedis {
  private child: ChildProcess | null = null;
  private constructor(readonly port: number) {}

  static async create(): Promise<OwnRedis> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const redis = new OwnRedis(port);
    await redis.start();
    return redis;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it again after `stop()`; does nothing while it runs. */
  async start() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    const child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.child = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output}`)));
      child.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) resolve();
      });
    });
    child.removeAllListeners("exit");
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.child = null;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }
}
