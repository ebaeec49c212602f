import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const prismaCli = createRequire(import.meta.url).resolve("prisma/build/index.js");
const unrefLongTimers = fileURLToPath(new URL("./unref-long-timers.cjs", import.meta.url));

/**
 * Applies pending migrations with `prisma migrate deploy` (the WebAssembly schema engine, so it
 * works offline). The CLI takes an advisory lock, so several instances starting together are safe.
 */
export async function migrateDatabase(databaseUrl: string): Promise<void> {
  try {
    await promisify(execFile)(process.execPath, ["--require", unrefLongTimers, prismaCli, "migrate", "deploy"], {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const output = error as { stdout?: string; stderr?: string };
    throw new Error(`Database migration failed:\n${output.stderr ?? ""}${output.stdout ?? ""}`);
  }
}
