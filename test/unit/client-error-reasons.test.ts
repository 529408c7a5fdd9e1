// The published client's ErrorReason union (packages/client/src/errors.ts) is
// the set of ErrorInfo.reason values the server sends: every reason the source
// raises is in it, and it names none the source never raises.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_REASONS } from "../../packages/client/src/errors.ts";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Reasons given to the error constructors and helpers of src/domain/errors.ts, and reason constants. */
const RAISED = [
  /new DomainError\(\s*"[a-z_]+",\s*"([A-Z][A-Z0-9_]+)"/g,
  /\b(?:unauthenticated|permissionDenied)\(\s*"([A-Z][A-Z0-9_]+)"/g,
  /\binvalidArgument\([^;]*?,\s*"([A-Z][A-Z0-9_]+)"\)/g,
  /\breason = "([A-Z][A-Z0-9_]+)"/g,
  /\bexport const [A-Z_]+ = "([A-Z][A-Z0-9_]+)";/g,
  /\breason: "([A-Z][A-Z0-9_]+)"/g,
];

describe("the client's error reasons", () => {
  it("are exactly the reasons the server raises", () => {
    const raised = new Set<string>();
    for (const file of sources("src")) {
      const text = readFileSync(file, "utf8");
      for (const pattern of RAISED) for (const match of text.matchAll(pattern)) raised.add(match[1]!);
    }
    expect(raised.size).toBeGreaterThan(30);
    // A new reason in src/: add it to ERROR_REASONS in packages/client/src/errors.ts (clients branch on it).
    expect([...raised].sort(), "ERROR_REASONS (packages/client/src/errors.ts) must list every reason src/ raises").toStrictEqual([...ERROR_REASONS].sort());
  });
});
