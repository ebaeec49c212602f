// The README's "Using the API from a dashboard" set-up, run as a dashboard project would run it:
// test/fixtures/dashboard holds its codegen.ts, tsconfig.json and sources, which the README quotes.
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { buildSchema, isScalarType, specifiedScalarTypes } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import config from "./fixtures/dashboard/codegen.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixture = path.join(root, "test/fixtures/dashboard");
const codegenCli = path.join(root, "node_modules/@graphql-codegen/cli/cjs/bin.js");
const tsc = path.join(root, "node_modules/typescript/bin/tsc");

/** Runs a Node script in a folder; resolves with its exit code and output, never rejects. */
async function run(script: string, args: string[], cwd: string) {
  // Outside the test runner's NODE_ENV=test, which silences codegen's report, errors included.
  const { NODE_ENV: _, ...env } = process.env;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, ...args], { cwd, env });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

/** A copy of the dashboard project beside the server's schema.graphql, as its README set-up says. */
async function dashboardProject(): Promise<string> {
  // Under node_modules/, so the copy resolves the packages installed here.
  await mkdir(path.join(root, "node_modules/.cache"), { recursive: true });
  const dir = await mkdtemp(path.join(root, "node_modules/.cache/dashboard-"));
  await cp(fixture, dir, { recursive: true });
  await cp(path.join(root, "schema.graphql"), path.join(dir, "schema.graphql"));
  return dir;
}

const scalarsMap = (): Record<string, unknown> => {
  const output = config.generates["src/gql/"] as { config: { scalars: Record<string, unknown> } };
  return output.config.scalars;
};

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("the dashboard's client codegen config", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await dashboardProject();
    dirs.push(dir);
  });

  it("maps every custom scalar the schema declares", async () => {
    const schema = buildSchema(await readFile(path.join(root, "schema.graphql"), "utf8"));
    const builtIn = new Set(specifiedScalarTypes.map((type) => type.name));
    const custom = Object.values(schema.getTypeMap())
      .filter((type) => isScalarType(type) && !builtIn.has(type.name))
      .map((type) => type.name)
      .sort();
    expect(custom.length).toBeGreaterThan(0);
    expect(Object.keys(scalarsMap()).sort()).toEqual(custom);
  });

  it("generates typed operations that type-check with each scalar as mapped", async () => {
    const generated = await run(codegenCli, ["--config", "codegen.ts"], dir);
    expect(generated.output).toContain("[SUCCESS] Generate to src/gql/");
    expect(generated.output).not.toMatch(/FAILED|Error/);
    expect(generated.code).toBe(0);
    // check-types.ts compiles only when DateTime, SafeInt and the enums arrive as the map says.
    const checked = await run(tsc, ["-p", "tsconfig.json"], dir);
    expect(checked.output).toBe("");
    expect(checked.code).toBe(0);
  });

  it("fails, rather than typing it `any`, when a scalar is missing from the map", async () => {
    const source = await readFile(path.join(dir, "codegen.ts"), "utf8");
    const withoutSafeInt = source.replace(/^\s*SafeInt: .*\n/m, "\n");
    expect(withoutSafeInt).not.toBe(source);
    await writeFile(path.join(dir, "codegen-missing.ts"), withoutSafeInt);
    const generated = await run(codegenCli, ["--config", "codegen-missing.ts"], dir);
    expect(generated.code).not.toBe(0);
    expect(generated.output).toContain("Unknown scalar type SafeInt");
  });

  it("is what the README shows, with the Apollo Client set-up", async () => {
    const readme = await readFile(path.join(root, "README.md"), "utf8");
    for (const file of ["codegen.ts", "src/client.ts"]) {
      const text = await readFile(path.join(fixture, file), "utf8");
      expect(readme.includes(text), `README quotes test/fixtures/dashboard/${file} whole`).toBe(true);
    }
  });
});
