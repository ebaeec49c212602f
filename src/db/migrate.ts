import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const migrationsDir = path.join(projectRoot, "prisma/migrations");
// Prisma 6.19's CLI (installed as `prisma-migrate`): its WebAssembly schema engine works offline.
const prismaCli = createRequire(import.meta.url).resolve("prisma-migrate/build/index.js");
const unrefLongTimers = fileURLToPath(new URL("./unref-long-timers.cjs", import.meta.url));
const NO_NATIVE_ENGINE = path.join(projectRoot, "prisma/no-schema-engine");

/** The migration folders the code carries. */
export async function knownMigrations(folder = migrationsDir): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true });
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}

/** Whether every migration folder is recorded as applied (false when the table is missing). */
async function allApplied(databaseUrl: string, migrations: string[]): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    const applied = new Set(rows.map((row) => row.name));
    return migrations.every((name) => applied.has(name));
  } catch (error) {
    if ((error as { code?: string }).code === "42P01") return false; // undefined_table: a new database
    throw error;
  } finally {
    await client.end();
  }
}

/**
 * Applies pending migrations with `prisma migrate deploy`, which takes an advisory lock, so
 * several instances starting together are safe. Starting a second time costs one query: the CLI
 * (a few seconds) runs only when a migration folder is not yet recorded as applied.
 */
export async function migrateDatabase(databaseUrl: string): Promise<"applied" | "up to date"> {
  if (await allApplied(databaseUrl, await knownMigrations())) return "up to date";
  try {
    await promisify(execFile)(
      process.execPath,
      ["--require", unrefLongTimers, prismaCli, "migrate", "deploy", "--config", "prisma-migrate.config.ts"],
      {
        cwd: projectRoot,
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          PRISMA_HIDE_UPDATE_MESSAGE: "1",
          // The CLI looks for a native query engine it never uses here (the schema engine is
          // WebAssembly) and, when several start at once, sometimes tries to download one and
          // fails offline. Naming an existing file stops the search.
          PRISMA_QUERY_ENGINE_LIBRARY: NO_NATIVE_ENGINE,
        },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return "applied";
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string };
    throw new Error(`Database migration failed:\n${output.stderr ?? ""}${output.stdout ?? ""}`);
  }
}
