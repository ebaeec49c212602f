// The layers of src/ (README, "Project layout"): a module imports only from its own layer or
// below, and no modules import each other in a circle. Read from the source with TypeScript's
// own parser, so a new file or import is checked without anyone listing it.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src");

/** Lowest first; a module may import from its own layer and the ones above it in this list. */
export const LAYERS: Array<{ name: string; holds: (file: string) => boolean }> = [
  { name: "foundation", holds: (file) => ["config.ts", "errors.ts", "logger.ts", "metrics.ts"].includes(file) || file.startsWith("generated/") },
  { name: "infrastructure", holds: (file) => file.startsWith("db/") || file.startsWith("realtime/") },
  { name: "domain", holds: (file) => ["domain/", "auth/", "usage/"].some((folder) => file.startsWith(folder)) },
  { name: "schema", holds: (file) => file.startsWith("schema/") },
  { name: "http", holds: (file) => file.startsWith("http/") },
  { name: "composition", holds: (file) => ["app.ts", "server.ts", "seed.ts", "bootstrap.ts"].includes(file) || file.startsWith("cli/") },
];

function sourceFiles(folder = src): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sourceFiles(full);
    return entry.name.endsWith(".ts") ? [path.relative(src, full)] : [];
  });
}

/** The src/ files a module imports (statically, dynamically or as types), relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(src, file), "utf8");
  const parsed = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const specifiers: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specifiers.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteral(argument)) specifiers.push(argument.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(parsed);
  return specifiers
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => path.normalize(path.join(path.dirname(file), specifier.replace(/\.js$/, ".ts"))));
}

const layerOf = (file: string) => LAYERS.findIndex((layer) => layer.holds(file));

describe("the layers of src/", () => {
  const files = sourceFiles();
  const graph = new Map(files.map((file) => [file, importsOf(file)]));

  it("place every module in a layer", () => {
    expect(files.filter((file) => layerOf(file) < 0)).toEqual([]);
  });

  it("never import from a higher layer", () => {
    const upward = [...graph].flatMap(([file, imports]) =>
      imports
        .filter((target) => layerOf(target) > layerOf(file))
        .map((target) => `${file} (${LAYERS[layerOf(file)]?.name}) imports ${target} (${LAYERS[layerOf(target)]?.name})`),
    );
    expect(upward).toEqual([]);
  });

  it("never import each other in a circle", () => {
    // Tarjan's strongly connected components: any component of more than one module is a cycle.
    let index = 0;
    const indices = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const connect = (file: string) => {
      indices.set(file, index);
      low.set(file, index++);
      stack.push(file);
      onStack.add(file);
      for (const target of graph.get(file) ?? []) {
        if (!graph.has(target)) continue;
        if (!indices.has(target)) {
          connect(target);
          low.set(file, Math.min(low.get(file)!, low.get(target)!));
        } else if (onStack.has(target)) {
          low.set(file, Math.min(low.get(file)!, indices.get(target)!));
        }
      }
      if (low.get(file) === indices.get(file)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== file);
        if (component.length > 1 || (graph.get(file) ?? []).includes(file)) cycles.push(component.sort());
      }
    };
    for (const file of files) if (!indices.has(file)) connect(file);
    expect(cycles).toEqual([]);
  });

  it("are read from the real import graph (a deliberate upward import would be seen)", () => {
    expect(graph.get("app.ts")).toContain("schema/index.ts");
    expect(layerOf("app.ts")).toBeGreaterThan(layerOf("schema/index.ts"));
  });
});
