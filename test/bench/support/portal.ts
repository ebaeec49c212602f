import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";

export const BENCH_PASSWORD = "bench password, long enough";
/** The admin the benchmarked server creates at start (ADMIN_*), who seeds through the API. */
export const BENCH_ADMIN = { login: "bench-admin", password: BENCH_PASSWORD };

/** A uniquely named database on a PostgreSQL server, dropped by `drop()`. */
export async function createDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `pp_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * Where a benchmarked server (`npm start`: src/start.mjs) runs and with what: a fresh database on
 * TEST_DATABASE_URL's PostgreSQL (with its own secrets) or else an embedded data folder, Redis
 * when TEST_REDIS_URL is set, the bench admin, JSON info lines (the banner with the URL is one).
 */
export async function benchServerPlace(options: { databaseServer: string | undefined; redisUrl: string | undefined }) {
  const env: Record<string, string | undefined> = {
    PORT: "0",
    HOST: "127.0.0.1",
    // As in production: an access line per request (JSON, to a pipe the bench drains).
    LOG_LEVEL: "info",
    SEED_DEMO: "false",
    ADMIN_EMAIL: "bench-admin@example.com",
    ADMIN_USERNAME: BENCH_ADMIN.login,
    ADMIN_PASSWORD: BENCH_ADMIN.password,
    REDIS_URL: options.redisUrl,
    REDIS_CHANNEL_PREFIX: `pp-bench-${randomBytes(4).toString("hex")}:`,
  };
  let database: Awaited<ReturnType<typeof createDatabase>> | undefined;
  let dataDir: string | undefined;
  if (options.databaseServer) {
    database = await createDatabase(options.databaseServer);
    Object.assign(env, {
      DATABASE_URL: database.url,
      JWT_SECRET: randomBytes(32).toString("base64url"),
      API_KEY_HASH_SECRET: randomBytes(32).toString("base64url"),
    });
  } else {
    dataDir = await mkdtemp(path.join(tmpdir(), "pp-bench-"));
    Object.assign(env, { DATA_DIR: dataDir, DATABASE_URL: undefined });
  }
  return {
    env,
    /** The fresh database, when on a PostgreSQL server. */
    database,
    async cleanUp() {
      await database?.drop();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
