// The documentation stays true as the code moves: every relative link in
// README.md and docs/ resolves (file and heading), every variable src/config.ts
// reads is in docs/configuration.md, and every RPC of proto/identity/v1 is in
// docs/rpc-status.md.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

function markdownFiles(): string[] {
  const inDocs = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? inDocs(path) : name.endsWith(".md") ? [path] : [];
    });
  return [join(ROOT, "README.md"), ...inDocs(join(ROOT, "docs"))];
}

/** Markdown without fenced code blocks, where a "#" line is no heading. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

/** Markdown without code of any kind, where brackets are not links. */
function prose(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, "");
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, text] of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = text!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** Every relative link of a markdown file that does not resolve, as "target: why". */
export function brokenLinks(file: string, markdown: string, exists: (path: string) => boolean, readTarget: (path: string) => string): string[] {
  const broken: string[] = [];
  for (const [, target] of prose(markdown).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue; // http:, https:, mailto:
    const [pathPart, anchor] = target!.split("#", 2) as [string, string | undefined];
    const path = pathPart === "" ? file : resolve(dirname(file), decodeURIComponent(pathPart));
    if (!exists(path)) {
      broken.push(`${target}: no such file`);
      continue;
    }
    if (anchor !== undefined && path.endsWith(".md") && !headingAnchors(readTarget(path)).has(anchor)) {
      broken.push(`${target}: no heading #${anchor}`);
    }
  }
  return broken;
}

describe("relative links in README.md and docs/", () => {
  it("finds a missing file and a missing heading (the checker can fail)", () => {
    const files = new Map([["/d/a.md", "# Title\n\n## Keys and backups\n"]]);
    const markdown = "[ok](a.md#keys-and-backups) [gone](b.md) [bad](a.md#nope) [web](https://x.y/z) `[code](c.md)`\n```\n[fenced](d.md)\n```\n";
    expect(
      brokenLinks(
        "/d/README.md",
        markdown,
        (p) => files.has(p),
        (p) => files.get(p)!,
      ),
    ).toEqual(["b.md: no such file", "a.md#nope: no heading #nope"]);
  });

  it("derives anchors the way GitHub does", () => {
    expect([...headingAnchors("## Bootstrap: the first super admin\n### An operator's session with `grpcurl`\n## Notes\n## Notes\n")]).toEqual([
      "bootstrap-the-first-super-admin",
      "an-operators-session-with-grpcurl",
      "notes",
      "notes-1",
    ]);
  });

  it.each(markdownFiles().map((file) => [relative(ROOT, file), file]))("%s: every relative link resolves", (_name, file) => {
    const read = (path: string) => readFileSync(path, "utf8");
    expect(brokenLinks(file, read(file), existsSync, read)).toEqual([]);
  });

  it("README.md stays a front door (about 200 lines at most) that links to docs/", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(readme.split("\n").length).toBeLessThanOrEqual(220);
    expect(readme).toContain("](docs/README.md)");
    expect(readme).toContain("](docs/architecture.md)");
  });

  it("docs/README.md links every document in docs/", () => {
    const index = readFileSync(join(ROOT, "docs/README.md"), "utf8");
    const documents = readdirSync(join(ROOT, "docs")).filter((name) => name.endsWith(".md") && name !== "README.md");
    const unlisted = documents.filter((name) => !index.includes(`](${name})`) && !index.includes(`](${name}#`));
    expect(unlisted, "add a row for each new document to the table of docs/README.md").toEqual([]);
  });
});

describe("docs/configuration.md", () => {
  it("names every environment variable src/config.ts reads", () => {
    const source = readFileSync(join(ROOT, "src/config.ts"), "utf8");
    const read = new Set([...source.matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g), ...source.matchAll(/\(env, "([A-Z][A-Z0-9_]+)"/g)].map((m) => m[1]!));
    expect(read.size).toBeGreaterThan(20);
    const documented = readFileSync(join(ROOT, "docs/configuration.md"), "utf8");
    const missing = [...read].filter((name) => !documented.includes(`\`${name}\``));
    expect(missing, "describe each new variable in the table of docs/configuration.md").toEqual([]);
  });
});

describe("docs/rpc-status.md", () => {
  it("names every RPC of proto/identity/v1", () => {
    const dir = join(ROOT, "proto/identity/v1");
    const rpcs = readdirSync(dir)
      .filter((name) => name.endsWith("_service.proto"))
      .flatMap((name) => [...readFileSync(join(dir, name), "utf8").matchAll(/^\s*rpc\s+(\w+)\s*\(/gm)].map((m) => m[1]!));
    expect(rpcs.length).toBeGreaterThan(40);
    const status = readFileSync(join(ROOT, "docs/rpc-status.md"), "utf8");
    const missing = rpcs.filter((rpc) => !new RegExp(`\\b${rpc}\\b`).test(status));
    expect(missing, "add each new RPC and its state to docs/rpc-status.md").toEqual([]);
  });
});
