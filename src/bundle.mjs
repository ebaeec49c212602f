// The server as `npm start` runs it: src/server.ts and the packages it uses, bundled by esbuild
// into a few files under node_modules/.cache/partner-portal/. Node then reads and compiles a
// handful of files instead of resolving, reading and compiling some thousand modules one by one
// (through the TypeScript loader): about half of start-up on a 2-core machine. Made at install
// (postinstall) and again whenever a file it was made from has changed. Plain JavaScript, so that
// it runs before any TypeScript loader would. `node src/bundle.mjs` makes it if it is not current.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CACHE = path.join(projectRoot, "node_modules/.cache/partner-portal");
/** Names the current bundle's folder and lists what it was made from. */
const manifestFile = (/** @type {string} */ cache) => path.join(cache, "server-bundle.json");
// npm gives installed files their package's fixed timestamp, so an upgrade is seen here instead:
// every install writes the tree it installed to this file.
const INSTALLED = path.join(projectRoot, "node_modules/.package-lock.json");
const installedTree = () => {
  try {
    return createHash("sha256").update(readFileSync(INSTALLED)).digest("hex");
  } catch {
    return "none";
  }
};

// Kept as files: a native addon, packages that start worker threads from their own files
// (pino's transports, the embedded database), and an optional module pg never finds.
const EXTERNAL = ["@node-rs/argon2", "pino", "pino-pretty", "@electric-sql/*", "pg-native"];

/**
 * @typedef {{ folder: string, builtAt: number, installed: string, inputs: string[] }} Manifest
 */

/** @returns {Manifest | undefined} */
function readManifest(/** @type {string} */ cache) {
  try {
    return JSON.parse(readFileSync(manifestFile(cache), "utf8"));
  } catch {
    return undefined;
  }
}

/** Whether the bundle exists and nothing it was made from (nor the install) changed since. */
function isCurrent(/** @type {string} */ cache, /** @type {Manifest | undefined} */ manifest) {
  if (!manifest || !existsSync(path.join(cache, manifest.folder, "server.mjs"))) return false;
  if (manifest.installed !== installedTree()) return false;
  // The project's own files by their time; installed ones by the installed tree above.
  const files = [...manifest.inputs.filter((file) => !file.startsWith("node_modules/")), fileURLToPath(import.meta.url)];
  for (const file of files) {
    try {
      if (statSync(path.resolve(projectRoot, file)).mtimeMs > manifest.builtAt) return false;
    } catch {
      return false; // gone: whatever imported it has changed too, but be sure
    }
  }
  return true;
}

/** Makes a new bundle in a folder of its own and points the manifest at it (atomically: a rename). */
async function build(/** @type {string} */ cache) {
  const { build: esbuild } = await import("esbuild");
  const builtAt = Date.now();
  const installed = installedTree();
  const folder = `server-${builtAt.toString(36)}-${process.pid}`;
  const result = await esbuild({
    absWorkingDir: projectRoot,
    entryPoints: ["src/server.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    // The oldest Node it may run on, whichever Node made it.
    target: "node20",
    // The database's start is a dynamic import, so that it begins before the rest loads.
    splitting: true,
    outdir: path.join(cache, folder),
    outExtension: { ".js": ".mjs" },
    external: EXTERNAL,
    sourcemap: "linked",
    sourcesContent: false,
    metafile: true,
    logLevel: "warning",
    // Bundled CommonJS packages `require` Node's own modules and the external ones.
    banner: { js: `import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);` },
    plugins: [
      {
        // A module that finds files next to itself (migrations, the template, Prisma's engine
        // files) keeps finding them there: its import.meta.url stays its own file's.
        name: "own-file-url",
        setup(builder) {
          builder.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
            const text = await readFile(args.path, "utf8");
            if (!text.includes("import.meta.url")) return undefined;
            const loader = /\.[cm]?ts$/.test(args.path) ? "ts" : "js";
            return { contents: text.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)), loader };
          });
        },
      },
    ],
  });
  /** @type {Manifest} */
  const manifest = { folder, builtAt, installed, inputs: Object.keys(result.metafile.inputs) };
  const partial = `${manifestFile(cache)}.${process.pid}.partial`;
  await writeFile(partial, JSON.stringify(manifest));
  await rename(partial, manifestFile(cache));
  // Earlier bundles, but for the newest one before this (a server started a moment ago may still
  // load its lazily imported parts from it).
  const earlier = readdirSync(cache)
    .filter((name) => name.startsWith("server-") && name !== folder && !name.includes("."))
    .sort((a, b) => statSync(path.join(cache, b)).mtimeMs - statSync(path.join(cache, a)).mtimeMs);
  for (const name of earlier.slice(1)) rmSync(path.join(cache, name), { recursive: true, force: true });
  return manifest;
}

/**
 * The bundle's entry file, made first if it is missing or stale. `onBuild` is told before a
 * build starts (it takes seconds); `cache` is the folder bundles are kept in (inside the project,
 * where the packages left out of the bundle are found).
 * @param {{ onBuild?: () => void, cache?: string }} [options]
 */
export async function currentBundle(options = {}) {
  const cache = options.cache ?? CACHE;
  let manifest = readManifest(cache);
  if (!isCurrent(cache, manifest)) {
    options.onBuild?.();
    await mkdir(cache, { recursive: true });
    manifest = await build(cache);
  }
  return path.join(cache, /** @type {Manifest} */ (manifest).folder, "server.mjs");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  let built = false;
  const entry = await currentBundle({ onBuild: () => (built = true) });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`Server bundle: ${path.relative(process.cwd(), entry)} (${built ? `made in ${seconds} s` : "current"})`);
}
