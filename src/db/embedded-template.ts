import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { knownMigrations, migrationsDir, projectRoot } from "./migrate.js";

/**
 * A new embedded database costs seconds of PostgreSQL initialisation and then the migrations.
 * Installing the project (`postinstall`) packs one such database, migrated and empty, into
 * `node_modules/.cache/partner-portal/`; a new data folder (and every in-memory database the tests
 * open) starts from it instead. The file is named after PGlite's version and every migration's
 * name and SQL, so a migration added since, or another PGlite, finds no file and the database is
 * made the long way.
 */
export const TEMPLATE_DIR = path.join(projectRoot, "node_modules/.cache/partner-portal");

const pgliteVersion = (): string => {
  const require = createRequire(import.meta.url);
  const main = require.resolve("@electric-sql/pglite");
  // The package's own package.json, found from its entry point (dist/…).
  let dir = path.dirname(main);
  for (;;) {
    try {
      const manifest = require(path.join(dir, "package.json")) as { name?: string; version?: string };
      if (manifest.name === "@electric-sql/pglite") return manifest.version ?? "unknown";
    } catch {
      // not this folder
    }
    const parent = path.dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
};

/** The template's file for the migrations this checkout carries and the installed PGlite. */
export async function templateFile(dir = TEMPLATE_DIR, migrations = migrationsDir): Promise<string> {
  const hash = createHash("sha256").update(`pglite ${pgliteVersion()}\n`);
  for (const name of (await knownMigrations(migrations)).sort()) {
    hash.update(`${name}\n`).update(await readFile(path.join(migrations, name, "migration.sql")));
  }
  return path.join(dir, `pgdata-${hash.digest("hex").slice(0, 24)}.tar.gz`);
}

/** The packed database for this checkout, if one was made. */
export async function readTemplate(dir = TEMPLATE_DIR): Promise<Blob | undefined> {
  try {
    return new Blob([await readFile(await templateFile(dir))]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
