// .ci/run must provide redis-server and redis-cli: with CI=true the Redis
// Cluster suites fail without them (test/support/redis-cluster.ts). Runs the
// real script on a PATH of its own — a few real tools plus recording stand-ins
// for apt-get, sudo, npm and the database clients — so nothing is installed or
// started here.
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const script = resolve(import.meta.dirname, "../../.ci/run");
const dirs: string[] = [];

/** A PATH holding the real basics and stand-ins that append their name and arguments to `calls`. */
function fakePath(withRedis: boolean): { bin: string; calls: string } {
  const bin = mkdtempSync(join(tmpdir(), "ci-run-"));
  dirs.push(bin);
  const calls = join(bin, "calls.log");
  writeFileSync(calls, "");
  for (const tool of ["bash", "dirname", "seq", "sleep", "mkdir", "id", "cat"]) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  const stand = (name: string, body = "exit 0") => {
    writeFileSync(join(bin, name), `#!/usr/bin/bash\necho "${name} $*" >> "${calls}"\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  // sudo runs what it is given (the script only uses it when not root).
  stand("sudo", '"$@"');
  for (const name of ["apt-get", "npm", "mysqladmin", "redis-cli"]) stand(name);
  if (withRedis) stand("redis-server");
  return { bin, calls };
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe(".ci/run", () => {
  it("installs redis-server (which brings redis-cli) when it is missing, before the tests", async () => {
    const { bin, calls } = fakePath(false);
    await run("/usr/bin/bash", [script], { env: { PATH: bin, HOME: bin } });
    const log = readFileSync(calls, "utf8").split("\n");
    const install = log.findIndex((l) => /^apt-get install -y redis-server\b/.test(l));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(log.findIndex((l) => l.startsWith("npm test") || l === "npm ci")).toBeGreaterThan(install);
  });

  it("installs nothing when redis-server and redis-cli are there", async () => {
    const { bin, calls } = fakePath(true);
    await run("/usr/bin/bash", [script], { env: { PATH: bin, HOME: bin } });
    const log = readFileSync(calls, "utf8");
    expect(log).not.toMatch(/apt-get/);
    expect(log).toMatch(/^npm ci$/m);
  });
});
