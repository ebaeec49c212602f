import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { loadSecrets } from "../src/auth/secrets.js";
import { currentBundle } from "../src/bundle.mjs";
import { ConfigError, loadConfig } from "../src/config.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const secrets = { JWT_SECRET: "j".repeat(32), API_KEY_HASH_SECRET: "h".repeat(32) };

/** The problems loadConfig refuses the environment with (fails if it accepts it). */
function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(message).toBe(["Invalid configuration:", ...problems.map((problem) => `  ${problem}`)].join("\n"));
    return problems;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe("loadConfig", () => {
  it("accepts PostgreSQL URLs in both spellings, with the secrets", () => {
    for (const url of ["postgresql://portal:pw@db.internal:5432/portal", "postgres://db.internal/portal?sslmode=require"]) {
      expect(loadConfig({ DATABASE_URL: url, ...secrets }).databaseUrl).toBe(url);
    }
  });

  it("refuses a database URL that is not PostgreSQL in one line, without repeating the URL", () => {
    const found = problems({ DATABASE_URL: "mysql://root:hunter2-password@db.internal/portal", ...secrets });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^DATABASE_URL: must be a PostgreSQL URL/);
    expect(found[0]).not.toContain("hunter2");
    expect(problems({ DATABASE_URL: "db.internal:5432", ...secrets })).toEqual([found[0]]);
  });

  it("refuses a Redis URL that is not Redis", () => {
    expect(problems({ REDIS_URL: "http://redis.internal:6379" })).toEqual([expect.stringMatching(/^REDIS_URL: must be a Redis URL/)]);
    expect(loadConfig({ REDIS_URL: "rediss://cache.internal:6380" }).redisUrl).toBe("rediss://cache.internal:6380");
  });

  it("requires both secrets with DATABASE_URL, naming each missing one", () => {
    const url = "postgresql://db.internal/portal";
    expect(problems({ DATABASE_URL: url })).toEqual([
      expect.stringMatching(/^JWT_SECRET: required when DATABASE_URL is set/),
      expect.stringMatching(/^API_KEY_HASH_SECRET: required when DATABASE_URL is set/),
    ]);
    expect(problems({ DATABASE_URL: url, JWT_SECRET: secrets.JWT_SECRET, API_KEY_HASH_SECRET: "" })).toEqual([
      expect.stringMatching(/^API_KEY_HASH_SECRET: required/),
    ]);
    // The embedded database generates its own.
    expect(loadConfig({}).jwt.secret).toBeUndefined();
  });

  it("gives a config assembled by hand the same answer when it lacks a secret", async () => {
    const config = { ...loadConfig({ DATA_DIR: "memory://", ...secrets }), databaseUrl: "postgresql://db.internal/portal" };
    const refused = loadSecrets({ ...config, apiKeys: { ...config.apiKeys, hashSecret: undefined } });
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toMatchObject({ problems: [expect.stringMatching(/^API_KEY_HASH_SECRET: required when DATABASE_URL is set/)] });
  });

  it("refuses a short secret without printing it", () => {
    const found = problems({ JWT_SECRET: "too-short-secret-value" });
    expect(found).toEqual(["JWT_SECRET: must be at least 32 characters (256 bits)"]);
  });

  it("reports every problem at once, settings valid alone but not together included", () => {
    expect(problems({ PORT: "eighty", ADMIN_EMAIL: "ops@example.com", DATABASE_URL: "mysql://db/x" })).toEqual([
      expect.stringMatching(/^PORT: /),
      expect.stringMatching(/^DATABASE_URL: /),
      "ADMIN_EMAIL, ADMIN_PASSWORD: set both or neither",
      expect.stringMatching(/^JWT_SECRET: required/),
      expect.stringMatching(/^API_KEY_HASH_SECRET: required/),
    ]);
  });
});

describe("npm start with an invalid configuration", () => {
  // Made (or found current) before, so that no run prints that it is making it.
  beforeAll(() => currentBundle(), 120_000);

  /** The real entry point as a child process: its exit code and output. */
  function start(env: Record<string, string>) {
    const child = spawn(process.execPath, ["src/start.mjs"], {
      cwd: root,
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", DATA_DIR: "memory://", DATABASE_URL: "", REDIS_URL: "", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.once("exit", (code) => resolve({ code, stdout, stderr })),
    );
  }

  it("prints one line per problem and no stack trace, and exits 1 before starting anything", async () => {
    const [mysql, noSecrets] = await Promise.all([
      start({ DATABASE_URL: "mysql://root:hunter2-password@db.internal/portal", JWT_SECRET: "short" }),
      start({ DATABASE_URL: "postgresql://portal@127.0.0.1:9/portal" }),
    ]);
    expect(mysql.code).toBe(1);
    expect(mysql.stderr.trimEnd().split("\n")).toEqual([
      "Invalid configuration:",
      expect.stringMatching(/^ {2}DATABASE_URL: must be a PostgreSQL URL/),
      "  JWT_SECRET: must be at least 32 characters (256 bits)",
      expect.stringMatching(/^ {2}API_KEY_HASH_SECRET: required when DATABASE_URL is set/),
    ]);
    expect(mysql.stderr).not.toContain("hunter2");
    expect(mysql.stdout).toBe("");

    expect(noSecrets.code).toBe(1);
    expect(noSecrets.stderr.trimEnd().split("\n")).toEqual([
      "Invalid configuration:",
      expect.stringMatching(/^ {2}JWT_SECRET: required when DATABASE_URL is set/),
      expect.stringMatching(/^ {2}API_KEY_HASH_SECRET: required when DATABASE_URL is set/),
    ]);
    expect(noSecrets.stdout).toBe("");
  });
});
