import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { currentBundle } from "../../src/bundle.mjs";

/**
 * `npm run bench [-- <filter>]`: runs every `test/bench/*.bench.ts` module in turn (those whose
 * file name contains the filter, when one is given). Each module exports
 * `default async function run(): Promise<void>` and prints its own figures.
 */
// As `npm start` runs the server (src/start.mjs): in production mode, unless NODE_ENV says
// otherwise; servers started in process, child processes and the bare baselines alike.
process.env.NODE_ENV ??= "production";
// The server's bundle, made now if the code changed, so that no start-up measured includes making it.
await currentBundle({ onBuild: () => console.log("Bundling the server's code first...") });

const folder = path.dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];

const files = (await readdir(folder))
  .filter((file) => file.endsWith(".bench.ts") && (!filter || file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error(`No benchmark matches ${filter ? `"${filter}"` : "test/bench/*.bench.ts"}`);
  process.exit(1);
}

let failed = false;
for (const file of files) {
  console.log(`\n# ${file.replace(/\.bench\.ts$/, "")}`);
  try {
    const module = (await import(pathToFileURL(path.join(folder, file)).href)) as { default?: () => Promise<void> };
    if (typeof module.default !== "function") throw new Error(`${file} has no default export run()`);
    await module.default();
  } catch (error) {
    failed = true;
    console.error(`${file} failed:`, error);
  }
}
process.exit(failed ? 1 : 0);
