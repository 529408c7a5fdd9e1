// Driver errors are read only where the drivers live: the store adapters
// translate them into the domain's (src/store/*/errors.ts), so no module
// outside src/store/ looks at a MySQL, SQLite or Redis error's number, code or
// message.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");
const SRC = join(ROOT, "src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** What reading a SQL or Redis driver's error looks like. */
const DRIVER_ERROR_SIGNS = [
  /\berrno\b/,
  /\berrcode\b/,
  /ER_DUP_ENTRY|ER_LOCK_DEADLOCK|ER_LOCK_WAIT_TIMEOUT/,
  /PROTOCOL_CONNECTION_LOST|PROTOCOL_SEQUENCE_TIMEOUT/,
  /UNIQUE constraint failed|SQLITE_BUSY|SQLITE_CONSTRAINT/,
  /Connection is closed|max retries per request|MaxRetriesPerRequestError|Command timed out/i,
];

describe("driver errors stay in src/store/", () => {
  it("the adapters' translations do read them (the check sees what it looks for)", () => {
    const store = sources(join(SRC, "store"))
      .map((path) => readFileSync(path, "utf8"))
      .join("\n");
    for (const sign of DRIVER_ERROR_SIGNS) expect(store, String(sign)).toMatch(sign);
  });

  it("no module outside src/store/ reads one", () => {
    const offenders = sources(SRC)
      .filter((path) => !relative(SRC, path).startsWith("store/"))
      .flatMap((path) => {
        const text = readFileSync(path, "utf8");
        return DRIVER_ERROR_SIGNS.filter((sign) => sign.test(text)).map((sign) => `${relative(ROOT, path)}: ${sign}`);
      });
    expect(offenders).toEqual([]);
  });
});
