import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { IN_MEMORY, startEmbeddedPostgres } from "../src/db/embedded.js";

/**
 * `npm run migration:new -- <name> [--from <git ref>]`: writes the SQL that turns the schema at
 * the git ref (HEAD by default) into prisma/schema.prisma, as
 * prisma/migrations/<timestamp>_<name>/migration.sql. Offline: Prisma 6.19's WebAssembly schema
 * engine computes the difference; its driver adapter wants a connection, so an empty embedded
 * database stands in (nothing is written to it). Review the SQL before committing it.
 */
const args = process.argv.slice(2);
const name = args.find((arg, i) => !arg.startsWith("--") && args[i - 1] !== "--from");
const from = args.includes("--from") ? args[args.indexOf("--from") + 1] : "HEAD";
if (!name || !/^[a-z0-9_]+$/.test(name) || !from) {
  console.error("Usage: npm run migration:new -- <snake_case_name> [--from <git ref>]");
  process.exit(2);
}

const PROVIDER_LINE = '  provider = "postgresql"';
// Prisma 6.19 wants the datasource url that Prisma 7 forbids (older schemas may carry it already).
const withUrl = (schema: string) =>
  /^\s*url\s*=/m.test(schema) ? schema : schema.replace(PROVIDER_LINE, `${PROVIDER_LINE}\n  url      = env("DATABASE_URL")`);
const work = mkdtempSync(path.join(tmpdir(), "migration-"));
const previous = path.join(work, "previous.prisma");
const next = path.join(work, "next.prisma");
writeFileSync(previous, withUrl(execFileSync("git", ["show", `${from}:prisma/schema.prisma`], { encoding: "utf8" })));
writeFileSync(next, withUrl(readFileSync("prisma/schema.prisma", "utf8")));

const cli = createRequire(import.meta.url).resolve("prisma-migrate/build/index.js");
const scratch = await startEmbeddedPostgres(IN_MEMORY);
let sql: string;
try {
  // Asynchronously: the embedded database answering the CLI lives in this process.
  ({ stdout: sql } = await promisify(execFile)(
    process.execPath,
    [cli, "migrate", "diff", "--config", "prisma-migrate.config.ts", "--from-schema-datamodel", previous, "--to-schema-datamodel", next, "--script"],
    { encoding: "utf8", env: { ...process.env, DATABASE_URL: scratch.url, PRISMA_HIDE_UPDATE_MESSAGE: "1" } },
  ));
} finally {
  await scratch.close();
}
if (!/\b(CREATE|ALTER|DROP)\b/.test(sql)) {
  console.error(`prisma/schema.prisma does not differ from ${from}'s: no migration written.`);
  process.exit(1);
}
const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
const folder = path.join("prisma/migrations", `${stamp}_${name}`);
mkdirSync(folder, { recursive: true });
writeFileSync(path.join(folder, "migration.sql"), sql);
console.log(`Wrote ${folder}/migration.sql. Review it; the next start (or test run) applies it.`);
