// The layers stay layered: the imports of every module of src/ are read from
// the source and checked against the directions of docs/architecture.md —
// server → interceptors → services → domain, nothing back; the domain imports
// no driver, transport, generated code or delivery/; and src/ has no import
// circle (type-only imports count: a circle of types is a circle of concepts).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

/** Module → the specifiers it imports or re-exports (static and dynamic). */
export type ImportGraph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** The specifiers of `import … from "x"`, `export … from "x"`, `import "x"` and `import("x")`. */
export function importsOf(source: string): string[] {
  const withoutComments = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found = new Set<string>();
  for (const pattern of [/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']/g, /(?:^|\n)\s*import\s*["']([^"']+)["']/g, /\bimport\(\s*["']([^"']+)["']\s*\)/g]) {
    for (const match of withoutComments.matchAll(pattern)) found.add(match[1]!);
  }
  return [...found];
}

/** Every module of src/, keyed by its path from the repository root, with resolved relative imports. */
function srcGraph(): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(join(ROOT, "src"))) {
    const from = relative(ROOT, file);
    const specifiers = importsOf(readFileSync(file, "utf8")).map((s) => (s.startsWith(".") ? relative(ROOT, resolve(dirname(file), s)) : s));
    graph.set(from, specifiers);
  }
  return graph;
}

/** Each import that breaks a rule, as "importer → imported (rule)". */
export function layerViolations(graph: ImportGraph): string[] {
  const violations: string[] = [];
  const isTransportSide = (p: string) => p.startsWith("src/server/") || p.startsWith("src/interceptors/");
  const DOMAIN_FORBIDDEN: Array<[RegExp, string]> = [
    [/^src\/(server|interceptors|services|store|delivery|cli)\//, "the domain imports no outer layer"],
    [/^gen\//, "the domain imports no generated code"],
    [/^(mysql2|ioredis|kysely|nodemailer|argon2|pino|prom-client)(\/|$)/, "the domain imports no driver"],
    [/^(@connectrpc|@bufbuild|@grpc)\//, "the domain imports no transport or protobuf"],
    [/^node:(http|http2|https|net|tls|sqlite|dgram)$/, "the domain imports no transport or driver"],
  ];
  for (const [importer, imported] of graph) {
    for (const target of imported) {
      if ((importer.startsWith("src/services/") || importer.startsWith("src/domain/")) && isTransportSide(target)) {
        violations.push(`${importer} → ${target} (services and domain never import server/ or interceptors/)`);
      }
      if (importer.startsWith("src/interceptors/") && target.startsWith("src/server/")) {
        violations.push(`${importer} → ${target} (interceptors never import server/)`);
      }
      if (importer.startsWith("src/domain/")) {
        for (const [pattern, rule] of DOMAIN_FORBIDDEN) if (pattern.test(target)) violations.push(`${importer} → ${target} (${rule})`);
      }
    }
  }
  return violations;
}

/** Every import circle among the graph's own modules, each as its path (first module repeated at the end). */
export function importCircles(graph: ImportGraph): string[][] {
  const circles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === "open") circles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (state.get(node) === undefined) visit(node);
  return circles;
}

describe("the layer checks themselves", () => {
  it("read static, re-exported, side-effect and dynamic imports, not commented ones", () => {
    const source = [
      'import { a } from "./a.ts";',
      'import type { B } from "../b.ts";',
      "import {\n  c,\n  d,\n} from './c.ts';",
      'export { e } from "./e.ts";',
      'import "./side.ts";',
      'const f = await import("./f.ts");',
      '// import { g } from "./g.ts";',
      '/* import { h } from "./h.ts"; */',
    ].join("\n");
    expect(importsOf(source).sort()).toEqual(["../b.ts", "./a.ts", "./c.ts", "./e.ts", "./f.ts", "./side.ts"]);
  });

  it("flag services or domain importing server/ or interceptors/, and the domain importing drivers, transport, gen or delivery", () => {
    const graph: ImportGraph = new Map([
      ["src/services/x.ts", ["src/server/fast-path.ts", "src/domain/y.ts"]],
      ["src/domain/y.ts", ["src/interceptors/errors.ts", "gen/identity/v1/common_pb.js", "src/delivery/types.ts", "ioredis", "@connectrpc/connect", "node:crypto"]],
      ["src/server/z.ts", ["src/services/x.ts", "src/interceptors/errors.ts", "src/domain/y.ts"]],
    ]);
    expect(layerViolations(graph)).toEqual([
      "src/services/x.ts → src/server/fast-path.ts (services and domain never import server/ or interceptors/)",
      "src/domain/y.ts → src/interceptors/errors.ts (services and domain never import server/ or interceptors/)",
      "src/domain/y.ts → src/interceptors/errors.ts (the domain imports no outer layer)",
      "src/domain/y.ts → gen/identity/v1/common_pb.js (the domain imports no generated code)",
      "src/domain/y.ts → src/delivery/types.ts (the domain imports no outer layer)",
      "src/domain/y.ts → ioredis (the domain imports no driver)",
      "src/domain/y.ts → @connectrpc/connect (the domain imports no transport or protobuf)",
    ]);
  });

  it("find circles, including long ones, and nothing in a tree", () => {
    const circular: ImportGraph = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a", "d"]],
      ["d", []],
      ["e", ["e"]],
    ]);
    expect(importCircles(circular)).toEqual([["a", "b", "c", "a"], ["e", "e"]]);
    expect(importCircles(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]]))).toEqual([]);
  });
});

describe("src/", () => {
  const graph = srcGraph();

  it("is read whole (every layer has modules)", () => {
    for (const folder of ["server", "interceptors", "services", "domain", "store", "crypto", "delivery", "cli"]) {
      expect([...graph.keys()].some((p) => p.startsWith(`src/${folder}/`)), folder).toBe(true);
    }
  });

  it("keeps the layer directions", () => {
    expect(layerViolations(graph)).toEqual([]);
  });

  it("has no import circle", () => {
    expect(importCircles(graph).map((circle) => circle.join(" → "))).toEqual([]);
  });
});
