// The layers stay layered: the imports of every module of src/ are read with
// the TypeScript parser and checked against the directions of
// docs/architecture.md, and src/ has no import circle (type-only imports count:
// a circle of types is a circle of concepts).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** One import: its specifier, and whether only types come through it. */
export interface ImportEdge {
  specifier: string;
  typeOnly: boolean;
}

/** Module → what it imports or re-exports (static, side-effect and dynamic). */
export type ImportGraph = Map<string, ImportEdge[]>;

/** The imports of a module, read by the TypeScript parser (comments and strings cannot fool it). */
export function importsOf(source: string): ImportEdge[] {
  const file = ts.createSourceFile("module.ts", source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: ImportEdge[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node)
        ? (node.importClause?.isTypeOnly ?? false) ||
          (node.importClause !== undefined &&
            node.importClause.name === undefined &&
            node.importClause.namedBindings !== undefined &&
            ts.isNamedImports(node.importClause.namedBindings) &&
            node.importClause.namedBindings.elements.length > 0 &&
            node.importClause.namedBindings.elements.every((e) => e.isTypeOnly))
        : node.isTypeOnly;
      found.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** Every module of src/, keyed by its path from the repository root, with resolved relative imports. */
function srcGraph(): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of sourceFiles(join(ROOT, "src"))) {
    const from = relative(ROOT, file);
    const edges = importsOf(readFileSync(file, "utf8")).map(({ specifier, typeOnly }) => ({
      specifier: specifier.startsWith(".") ? relative(ROOT, resolve(dirname(file), specifier)) : specifier,
      typeOnly,
    }));
    graph.set(from, edges);
  }
  return graph;
}

/** Each import that breaks a rule, as "importer → imported (rule)". */
export function layerViolations(graph: ImportGraph): string[] {
  const violations: string[] = [];
  const under = (path: string, ...folders: string[]) => folders.some((f) => path.startsWith(`src/${f}/`));
  const DRIVERS = /^(mysql2|ioredis|kysely|nodemailer|argon2|pino|prom-client|@opentelemetry)(\/|$)/;
  const DOMAIN_FORBIDDEN: Array<[RegExp, string]> = [
    [/^src\/(server|interceptors|services|store|delivery|federation|cli)\//, "the domain imports no outer layer"],
    [/^gen\//, "the domain imports no generated code"],
    [DRIVERS, "the domain imports no driver"],
    [/^(@connectrpc|@bufbuild|@grpc)\//, "the domain imports no transport or protobuf"],
    [/^node:(http|http2|https|net|tls|sqlite|dgram|fs|child_process|cluster)$/, "the domain imports no transport, driver or file system"],
  ];
  for (const [importer, edges] of graph) {
    for (const { specifier: target, typeOnly } of edges) {
      const broken = (rule: string) => violations.push(`${importer} → ${target} (${rule})`);
      if (under(importer, "services", "domain") && under(target, "server", "interceptors")) broken("services and domain never import server/ or interceptors/");
      if (under(importer, "interceptors") && under(target, "server")) broken("interceptors never import server/");
      if (under(importer, "services") && under(target, "store", "delivery", "federation") && !typeOnly)
        broken("services reach stores and delivery through the domain");
      if (under(importer, "store", "delivery", "crypto", "federation") && under(target, "server", "interceptors", "services", "cli"))
        broken("adapters never import the layers above the domain");
      if (under(importer, "domain")) {
        for (const [pattern, rule] of DOMAIN_FORBIDDEN) if (pattern.test(target)) broken(rule);
        // crypto/ is a pure library (node:crypto only) the domain may call; its argon2 hasher is a port, injected.
        if (target === "src/crypto/passwords.ts" && !typeOnly) broken("the domain takes the password hasher injected, never argon2 itself");
      }
      if (under(importer, "crypto") && target !== "src/crypto/passwords.ts" && importer !== "src/crypto/passwords.ts" && DRIVERS.test(target))
        broken("crypto/ is pure computation: no driver");
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
    for (const { specifier: next } of graph.get(node) ?? []) {
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
  const edge = (specifier: string, typeOnly = false): ImportEdge => ({ specifier, typeOnly });

  it("read static, type-only, re-exported, side-effect and dynamic imports, not commented ones", () => {
    const source = [
      'import { a } from "./a.ts";',
      'import type { B } from "../b.ts";',
      "import {\n  c,\n  d,\n} from './c.ts';",
      'export { e } from "./e.ts";',
      'import "./side.ts";',
      'const f = await import("./f.ts");',
      'import { type T, type U } from "./types.ts";',
      "// a line comment naming src/store/* must not hide the next import",
      'import { x } from "./after-glob-comment.ts";',
      '// import { g } from "./g.ts";',
      '/* import { h } from "./h.ts"; */',
      "const s = \"import { i } from './i.ts'\";",
    ].join("\n");
    expect(importsOf(source).sort((p, q) => p.specifier.localeCompare(q.specifier))).toEqual([
      edge("../b.ts", true),
      edge("./a.ts"),
      edge("./after-glob-comment.ts"),
      edge("./c.ts"),
      edge("./e.ts"),
      edge("./f.ts"),
      edge("./side.ts"),
      edge("./types.ts", true),
    ]);
  });

  it("flag each import against the layer directions", () => {
    const graph: ImportGraph = new Map([
      ["src/services/x.ts", [edge("src/server/fast-path.ts"), edge("src/domain/y.ts"), edge("src/store/sql/stores.ts"), edge("src/delivery/types.ts", true)]],
      [
        "src/domain/y.ts",
        [
          edge("src/interceptors/errors.ts"),
          edge("gen/identity/v1/common_pb.js"),
          edge("src/delivery/types.ts"),
          edge("ioredis"),
          edge("@connectrpc/connect"),
          edge("node:crypto"),
          edge("src/crypto/keyring.ts"),
          edge("src/crypto/passwords.ts", true),
          edge("src/crypto/passwords.ts"),
        ],
      ],
      ["src/server/z.ts", [edge("src/services/x.ts"), edge("src/interceptors/errors.ts"), edge("src/domain/y.ts")]],
      ["src/store/w.ts", [edge("src/services/app.ts"), edge("src/domain/y.ts"), edge("mysql2")]],
      ["src/crypto/keyring.ts", [edge("ioredis"), edge("src/domain/ports/random.ts", true)]],
    ]);
    expect(layerViolations(graph)).toEqual([
      "src/services/x.ts → src/server/fast-path.ts (services and domain never import server/ or interceptors/)",
      "src/services/x.ts → src/store/sql/stores.ts (services reach stores and delivery through the domain)",
      "src/domain/y.ts → src/interceptors/errors.ts (services and domain never import server/ or interceptors/)",
      "src/domain/y.ts → src/interceptors/errors.ts (the domain imports no outer layer)",
      "src/domain/y.ts → gen/identity/v1/common_pb.js (the domain imports no generated code)",
      "src/domain/y.ts → src/delivery/types.ts (the domain imports no outer layer)",
      "src/domain/y.ts → ioredis (the domain imports no driver)",
      "src/domain/y.ts → @connectrpc/connect (the domain imports no transport or protobuf)",
      "src/domain/y.ts → src/crypto/passwords.ts (the domain takes the password hasher injected, never argon2 itself)",
      "src/store/w.ts → src/services/app.ts (adapters never import the layers above the domain)",
      "src/crypto/keyring.ts → ioredis (crypto/ is pure computation: no driver)",
    ]);
  });

  it("find circles, including long ones, and nothing in a tree", () => {
    const graphOf = (entries: Array<[string, string[]]>): ImportGraph => new Map(entries.map(([k, v]) => [k, v.map((s) => edge(s))]));
    const circular = graphOf([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", ["a", "d"]],
      ["d", []],
      ["e", ["e"]],
    ]);
    expect(importCircles(circular)).toEqual([
      ["a", "b", "c", "a"],
      ["e", "e"],
    ]);
    expect(
      importCircles(
        graphOf([
          ["a", ["b", "c"]],
          ["b", ["c"]],
          ["c", []],
        ]),
      ),
    ).toEqual([]);
  });
});

describe("src/", () => {
  const graph = srcGraph();

  it("is read whole (every layer has modules)", () => {
    for (const folder of ["server", "interceptors", "services", "domain", "store", "crypto", "delivery", "cli"]) {
      expect(
        [...graph.keys()].some((p) => p.startsWith(`src/${folder}/`)),
        folder,
      ).toBe(true);
    }
  });

  it("keeps the layer directions", () => {
    expect(layerViolations(graph)).toEqual([]);
  });

  it("has no import circle", () => {
    expect(importCircles(graph).map((circle) => circle.join(" → "))).toEqual([]);
  });
});
