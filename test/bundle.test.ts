// `npm start` runs the server from a bundle (src/bundle.mjs), made once and made again only when
// a file it was made from changed. Each test uses a cache folder of its own, inside the project
// (as the real one is), where the packages left out of the bundle are found.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { currentBundle } from "../src/bundle.mjs";
import { startScript } from "./bench/support/processes.js";

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});
const cacheFolder = async () => {
  await mkdir("node_modules/.cache", { recursive: true });
  const made = await mkdtemp(path.resolve("node_modules/.cache/pp-bundle-test-"));
  folders.push(made);
  return made;
};

describe("the server bundle", () => {
  it("is made once, reused while nothing changed, and made again once a source is newer", async () => {
    const cache = await cacheFolder();
    let builds = 0;
    const onBuild = () => builds++;
    const first = await currentBundle({ cache, onBuild });
    expect(builds).toBe(1);
    expect(await currentBundle({ cache, onBuild })).toBe(first);
    expect(builds).toBe(1);

    // As if src/server.ts had been saved after the bundle was made.
    const manifestFile = path.join(cache, "server-bundle.json");
    const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as { builtAt: number; inputs: string[] };
    expect(manifest.inputs).toContain("src/server.ts");
    expect(manifest.inputs.some((input) => input.startsWith("node_modules/graphql/"))).toBe(true);
    const saved = (await stat(path.resolve("src/server.ts"))).mtimeMs;
    await writeFile(manifestFile, JSON.stringify({ ...manifest, builtAt: saved - 1 }));
    const second = await currentBundle({ cache, onBuild });
    expect(builds).toBe(2);
    expect(second).not.toBe(first);
    // The one before is kept: a server started from it may still load its lazy parts.
    expect(existsSync(first)).toBe(true);

    // As if `npm install` had since installed other packages (npm keeps their files' timestamps).
    const latest = JSON.parse(await readFile(manifestFile, "utf8")) as { installed: string };
    expect(latest.installed).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(manifestFile, JSON.stringify({ ...latest, installed: "0".repeat(64) }));
    const third = await currentBundle({ cache, onBuild });
    expect(builds).toBe(3);
    expect(third).not.toBe(second);
    // Only the newest earlier one is kept.
    expect(existsSync(second)).toBe(true);
    expect(existsSync(first)).toBe(false);
  }, 180_000);

  it("starts the server, which answers a query", async () => {
    const entry = await currentBundle({ cache: await cacheFolder() });
    const server = await startScript(
      entry,
      { DATA_DIR: "memory://", PORT: "0", HOST: "127.0.0.1", DATABASE_URL: undefined, REDIS_URL: undefined, SEED_DEMO: "false" },
      /GraphiQL:\s+(http[^\s"\\]+)/,
    );
    try {
      const response = await fetch(server.match[1]!, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      expect(await response.json()).toEqual({ data: { __typename: "Query" } });
    } finally {
      await server.stop();
    }
  }, 120_000);
});
