import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrapData } from "../src/bootstrap.js";
import { currentBundle } from "../src/bundle.mjs";
import { ensureAdmin } from "../src/seed.js";
import { LoginDocument, SignUpDocument, ViewerDocument } from "./generated/graphql.js";
import { print } from "graphql";
import { startTestServer } from "./support/server.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** `npm start` as a child process: the real entry point, signals and all. */
class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  private output = "";
  private waiters: Array<{ pattern: RegExp; resolve: (match: RegExpMatchArray) => void }> = [];
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ["src/start.mjs"], {
      cwd: root,
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", DATABASE_URL: "", REDIS_URL: "", ...env },
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    const onData = (chunk: Buffer) => {
      this.output += chunk.toString();
      this.waiters = this.waiters.filter((waiter) => {
        const match = this.output.match(waiter.pattern);
        if (match) waiter.resolve(match);
        return !match;
      });
    };
    this.child.stdout.on("data", onData);
    this.child.stderr.on("data", onData);
  }

  /** Resolves when the output shows the pattern (now or later). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const match = this.output.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }

  get log() {
    return this.output;
  }
}

async function post(url: string, document: Parameters<typeof print>[0], variables: object, token?: string) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: print(document), variables }),
  });
  return (await response.json()) as { data?: any; errors?: unknown[] };
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("npm start on the embedded database", () => {
  // `npm start` runs the bundle (src/bundle.mjs): made, or found current, once before.
  beforeAll(() => currentBundle(), 120_000);

  it("seeds demo data, finishes a request in flight at SIGTERM, and keeps every row across a restart", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "pp-data-"));
    dirs.push(dataDir);
    const first = new ServerProcess({ DATA_DIR: dataDir });
    // The output is JSON log lines (stdout is not a terminal): a value ends at a quote or an escape.
    const [, url] = await first.waitFor(/GraphiQL:\s+([^\s"\\]+)/);
    const [, password] = await first.waitFor(/password for every demo account: ([^\s"\\]+)/);
    expect(first.log).toMatch(/acme-admin\s+partnerAdmin\s+Acme Logistics/);
    // Every start-up step prints a timed line before the server answers.
    const steps = [...first.log.matchAll(/"elapsedSeconds":[\d.]+,"msg":"(\w[^:"]*):/g)].map((match) => match[1]);
    expect(steps).toEqual(["Partner Portal", "Database", "Migrations", "Migrations", "Pub/sub", "GraphQL", "Seed"]);

    const admin = await post(url!, LoginDocument, { input: { login: "admin", password } });
    const adminToken: string = admin.data.login.token;

    // A sign-up whose body is still arriving when SIGTERM lands: the server has the request
    // (it answered 100 Continue) and must finish it before exiting.
    const body = JSON.stringify({
      query: print(SignUpDocument),
      variables: { input: { username: "late-arrival", email: "late@example.com", password: "a long enough passphrase" } },
    });
    const request = http.request(url!, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), expect: "100-continue" },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.once("response", (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      request.once("error", reject);
    });
    await new Promise<void>((resolve) => request.once("continue", () => resolve()));
    first.child.kill("SIGTERM");
    await first.waitFor(/SIGTERM: finishing in-flight requests/);
    request.end(body);

    const answered = await response;
    expect(answered.status).toBe(200);
    expect(JSON.parse(answered.body).data.signUp.user.username).toBe("late-arrival");
    expect(await first.exited).toBe(0);

    const second = new ServerProcess({ DATA_DIR: dataDir });
    try {
      const [, url2] = await second.waitFor(/GraphiQL:\s+([^\s"\\]+)/);
      expect(second.log).toMatch(/Demo data: already present/);
      const late = await post(url2!, LoginDocument, { input: { login: "late@example.com", password: "a long enough passphrase" } });
      expect(late.data.login.user.username).toBe("late-arrival");
      // The signing key lives in the data folder, so sessions from before the restart still work.
      const viewer = await post(url2!, ViewerDocument, {}, adminToken);
      expect(viewer.data.viewer.username).toBe("admin");
    } finally {
      second.child.kill("SIGINT");
      expect(await second.exited).toBe(0);
    }
  });
});

describe("bootstrap without demo data", () => {
  it("creates the operator's admin once and never changes an existing password", async () => {
    const env = { SEED_DEMO: "false", ADMIN_EMAIL: "Ops@Example.com", ADMIN_PASSWORD: "first admin password" };
    const server = await startTestServer({ env });
    try {
      expect(await bootstrapData(server.app)).toEqual({ demo: null, admin: "created" });
      expect(await server.app.services.prisma.partnerOrganization.count()).toBe(0);
      // A later start with another ADMIN_PASSWORD finds the admin and leaves its password alone.
      expect(await ensureAdmin(server.app.services.prisma, { email: "ops@example.com", password: "another password entirely" })).toBe(
        "exists",
      );
      const login = await server.gql(LoginDocument, { input: { login: "ops@example.com", password: "first admin password" } });
      expect(login.data?.login.user.role).toBe("admin");
      const changed = await server.gql(LoginDocument, { input: { login: "ops@example.com", password: "another password entirely" } });
      expect(changed.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    } finally {
      await server.close();
    }
  });
});

describe("health endpoints", () => {
  it("answers /healthz while the process is up and /readyz while the database answers", async () => {
    const server = await startTestServer();
    const base = server.url.replace(/\/graphql$/, "");
    try {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: "ready", pubsub: "memory", publishFailures: 0 });
    } finally {
      await server.close();
    }
  });
});
