import { existsSync } from "node:fs";
import path from "node:path";
import { templateFile } from "../db/embedded-template.js";
import { writeTemplate } from "../db/embedded.js";

/**
 * Run by `npm install` (postinstall): packs a migrated, empty embedded database, so that a new data
 * folder starts in about a second instead of several (see src/db/embedded-template.ts). Never
 * fails the install: without the file, new databases are made the long way.
 */
const shown = (file: string) => path.relative(process.cwd(), file);
try {
  const existing = await templateFile();
  if (existsSync(existing)) {
    console.log(`Embedded database template: ${shown(existing)} (already made)`);
  } else {
    const started = performance.now();
    const file = await writeTemplate();
    console.log(`Embedded database template: ${shown(file)} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
} catch (error) {
  console.warn(`Embedded database template not made; new databases will be made the long way: ${(error as Error).message}`);
}
