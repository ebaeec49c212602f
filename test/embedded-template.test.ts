// A new embedded database starts from the template packed at install time; an existing one never
// does, and a template made for other migrations is never found.
import { cp, appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTemplate, templateFile } from "../src/db/embedded-template.js";
import { IN_MEMORY, startEmbeddedPostgres, writeTemplate } from "../src/db/embedded.js";
import { knownMigrations, migrateDatabase, migrationsDir } from "../src/db/migrate.js";

const folders: string[] = [];
const folder = async () => {
  const made = await mkdtemp(path.join(tmpdir(), "pp-template-"));
  folders.push(made);
  return made;
};
afterAll(async () => {
  for (const made of folders) await rm(made, { recursive: true, force: true });
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

const tableExists = async (url: string, table: string) =>
  (await query<{ found: boolean }>(url, `SELECT to_regclass('"${table}"') IS NOT NULL AS found`))[0]!.found;

// A template of our own: migrated, plus a table only it has, so that a database shows where it came from.
let marked: Blob;
beforeAll(async () => {
  const database = await startEmbeddedPostgres(IN_MEMORY, { template: null });
  try {
    await migrateDatabase(database.url);
    await query(database.url, `CREATE TABLE "FromTemplate" (id int)`);
    marked = await database.dump();
  } finally {
    await database.close();
  }
});

describe("the embedded database template", () => {
  it("gives a new data folder every migration, with no migration left to run", async () => {
    const dataDir = await folder();
    const database = await startEmbeddedPostgres(dataDir, { template: marked });
    try {
      expect(await tableExists(database.url, "FromTemplate")).toBe(true);
      const applied = await query<{ name: string }>(database.url, `SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL`);
      expect(applied.map((row) => row.name).sort()).toEqual((await knownMigrations()).sort());
      expect(await migrateDatabase(database.url)).toBe("up to date");
      await query(database.url, `INSERT INTO "FromTemplate" VALUES (1)`);
    } finally {
      await database.close();
    }
    // What was written there is kept, and the template is not loaded over it.
    const again = await startEmbeddedPostgres(dataDir, { template: marked });
    try {
      expect(await query(again.url, `SELECT id FROM "FromTemplate"`)).toEqual([{ id: 1 }]);
    } finally {
      await again.close();
    }
  });

  it("is never loaded into an existing data folder", async () => {
    const dataDir = await folder();
    const first = await startEmbeddedPostgres(dataDir, { template: null });
    await first.close();
    const reopened = await startEmbeddedPostgres(dataDir, { template: marked });
    try {
      expect(await tableExists(reopened.url, "FromTemplate")).toBe(false);
    } finally {
      await reopened.close();
    }
  });

  it("is named after every migration's SQL, so a changed or added migration finds none", async () => {
    const migrations = await folder();
    await cp(migrationsDir, migrations, { recursive: true });
    const dir = await folder();
    const original = await templateFile(dir, migrations);
    expect(original).toBe(await templateFile(dir, migrationsDir));
    const [last] = (await knownMigrations(migrations)).sort().reverse();
    await appendFile(path.join(migrations, last!, "migration.sql"), "\n-- changed\n");
    expect(await templateFile(dir, migrations)).not.toBe(original);
  });

  it("is written for this checkout's migrations and read back; none is found where none was written", async () => {
    const dir = await folder();
    expect(await readTemplate(dir)).toBeUndefined();
    const file = await writeTemplate(dir);
    expect(file).toBe(await templateFile(dir));
    const template = await readTemplate(dir);
    expect(template?.size).toBeGreaterThan(0);
    const database = await startEmbeddedPostgres(IN_MEMORY, { template });
    try {
      expect(await migrateDatabase(database.url)).toBe("up to date");
      expect(await tableExists(database.url, "UsageLog")).toBe(true);
    } finally {
      await database.close();
    }
  });
});

describe("the embedded database's thread", () => {
  it("reports a data folder PostgreSQL cannot open as an error, and ends", async () => {
    const dataDir = await folder();
    await mkdir(path.join(dataDir, "pgdata"));
    // A data folder of a PostgreSQL release from long ago.
    await writeFile(path.join(dataDir, "pgdata", "PG_VERSION"), "9\n");
    await expect(startEmbeddedPostgres(dataDir)).rejects.toThrow(/^Embedded PostgreSQL: /);
  });

  it("serves several connections at once, and its dump is a database that opens", async () => {
    const database = await startEmbeddedPostgres(IN_MEMORY);
    let dumped: Blob;
    try {
      const answers = await Promise.all(
        Array.from({ length: 4 }, (_, i) => query<{ n: number }>(database.url, `SELECT ${i}::int AS n, pg_sleep(0.05)::text AS slept`)),
      );
      expect(answers.map((rows) => rows[0]!.n)).toEqual([0, 1, 2, 3]);
      await query(database.url, `CREATE TABLE "Dumped" (id int); INSERT INTO "Dumped" VALUES (7)`);
      dumped = await database.dump();
    } finally {
      await database.close();
    }
    const reopened = await startEmbeddedPostgres(IN_MEMORY, { template: dumped });
    try {
      expect(await query(reopened.url, `SELECT id FROM "Dumped"`)).toEqual([{ id: 7 }]);
    } finally {
      await reopened.close();
    }
  });
});
