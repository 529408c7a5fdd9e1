// The container image, without a Docker engine: the test lays out the image's
// file tree as the Dockerfile does (its WORKDIR, COPY, ENV, VOLUME and CMD; the
// production dependencies are this checkout's node_modules), owned by root, its
// volumes owned by the unprivileged user, and starts the CMD as that user.
// The embedded default must start, answer /readyz, pass the image's HEALTHCHECK
// and write nowhere but its data volume (issue 14). Plus the compose file's
// operator-facing rules.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, ready, request, startMain, type MainProcess } from "../support/main-process.ts";

const ROOT = process.cwd();
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

interface Image {
  workdir: string;
  env: Record<string, string>;
  copies: Array<{ from: string[]; to: string }>;
  volumes: string[];
  user: string | undefined;
  cmd: string[];
  healthcheck: string[] | undefined;
  runs: string[];
}

/** The instructions of the Dockerfile this test understands (exec-form CMD and HEALTHCHECK). */
function parseDockerfile(text: string): Image {
  const image: Image = { workdir: "/", env: {}, copies: [], volumes: [], user: undefined, cmd: [], healthcheck: undefined, runs: [] };
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    switch (instruction!.toUpperCase()) {
      case "WORKDIR":
        image.workdir = posix.resolve(image.workdir, args);
        break;
      case "ENV":
        for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) image.env[match[1]!] = match[2]!.replace(/^"|"$/g, "");
        break;
      case "COPY": {
        const parts = rest.filter((p) => !p.startsWith("--"));
        image.copies.push({ from: parts.slice(0, -1), to: posix.resolve(image.workdir, parts.at(-1)!) });
        break;
      }
      case "VOLUME":
        image.volumes.push(...(args.startsWith("[") ? (JSON.parse(args) as string[]) : args.split(/\s+/)));
        break;
      case "USER":
        image.user = args;
        break;
      case "CMD":
        image.cmd = JSON.parse(args) as string[];
        break;
      case "HEALTHCHECK":
        image.healthcheck = JSON.parse(args.slice(args.indexOf("CMD") + 3).trim()) as string[];
        break;
      case "RUN":
        image.runs.push(args);
        break;
    }
  }
  return image;
}

/** Every path under `dir` with its size and mtime, to see what a run wrote. */
function snapshot(dir: string, skip: Set<string>, into = new Map<string, string>()): Map<string, string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (skip.has(path) || entry.isSymbolicLink()) continue;
    const stat = statSync(path);
    into.set(path, `${stat.size}:${stat.mtimeMs}`);
    if (entry.isDirectory()) snapshot(path, skip, into);
  }
  return into;
}

const dockerfile = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));

describe.runIf(isRoot)("the image's embedded default, as an unprivileged user", () => {
  const root = mkdtempSync(join(tmpdir(), "identity-image-"));
  chmodSync(root, 0o755);
  let service: MainProcess | undefined;
  afterAll(async () => {
    await service?.stop();
    rmSync(root, { recursive: true, force: true });
  });
  /** An absolute path of the image, inside the test's root. */
  const inImage = (path: string) => join(root, path);

  it("runs as a non-root user, declares its data volume, a HEALTHCHECK and installs only production dependencies", () => {
    expect(dockerfile.user).toBeDefined();
    expect(["root", "0"]).not.toContain(dockerfile.user);
    expect(dockerfile.volumes.length).toBeGreaterThan(0);
    expect(dockerfile.healthcheck).toBeDefined();
    expect(dockerfile.runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    // The data directory is the volume, as an absolute path.
    expect(dockerfile.volumes).toContain(dockerfile.env.DATA_DIR);
  });

  it("starts, answers /readyz, passes its HEALTHCHECK and writes only in its data volume", async () => {
    // COPY, as root, read-only for everyone else.
    for (const { from, to } of dockerfile.copies) {
      for (const source of from) {
        const target = from.length > 1 || to.endsWith("/") ? join(inImage(to), posix.basename(source)) : inImage(to);
        mkdirSync(join(target, ".."), { recursive: true });
        cpSync(join(ROOT, source), target, { recursive: true });
      }
    }
    const app = inImage(dockerfile.workdir);
    // RUN npm ci --omit=dev: this checkout's dependencies stand in for the image's.
    symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
    spawnSync("chmod", ["-R", "go-w,a+rX", root]);
    // The volumes belong to the image's user, as the Dockerfile's chown makes them.
    for (const volume of dockerfile.volumes) {
      mkdirSync(inImage(volume), { recursive: true });
      chownSync(inImage(volume), NOBODY, NOBODY);
    }
    const before = snapshot(root, new Set(dockerfile.volumes.map(inImage)));

    // Absolute paths of the image live under the test's root; the port is a free one on loopback.
    const env: Record<string, string> = { HOME: "/nonexistent" };
    for (const [name, value] of Object.entries(dockerfile.env)) env[name] = value.startsWith("/") ? inImage(value) : value;
    const port = await freePort();
    Object.assign(env, { PORT: String(port), HOST: "127.0.0.1" });
    const asUser = (cmd: string[]) => ({
      command: "setpriv",
      args: [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--", ...cmd.map((part, i) => (i === 0 && part === "node" ? process.execPath : part))],
      cwd: app,
    });
    const healthcheck = () => {
      const { command, args, cwd } = asUser(dockerfile.healthcheck!);
      return spawnSync(command, args, { cwd, env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8", timeout: 10_000 });
    };
    expect(healthcheck().status, "the HEALTHCHECK fails while nothing listens").not.toBe(0);

    service = startMain(env, asUser(dockerfile.cmd));
    await service.listening();
    await ready(port);
    expect(service.output()).not.toMatch(/EACCES|EPERM/);
    expect((await request(port, "GET", "/healthz")).status).toBe(200);
    const check = healthcheck();
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);

    // The embedded database and its generated keys are in the volume, owned by the user; nothing else changed.
    // DATA_DIR as the service resolves it: relative to the WORKDIR when not absolute (default "data").
    const data = inImage(posix.resolve(dockerfile.workdir, dockerfile.env.DATA_DIR ?? "data"));
    expect(readdirSync(data).length).toBeGreaterThan(0);
    for (const name of readdirSync(data)) expect(statSync(join(data, name)).uid).toBe(NOBODY);
    expect(snapshot(root, new Set(dockerfile.volumes.map(inImage)))).toEqual(before);
    expect(existsSync(join(app, "data"))).toBe(false);
  }, 60_000);
});

describe("docker-compose.yml", () => {
  const compose = readFileSync(join(ROOT, "docker-compose.yml"), "utf8");
  /** Each service's block of lines, by name (two-space indented keys under `services:`). */
  const services = new Map<string, string>();
  const body = compose
    .slice(compose.indexOf("\nservices:") + 1)
    .split("\n")
    .slice(1);
  let current: string | undefined;
  for (const line of body) {
    if (/^\S/.test(line)) break;
    const name = /^ {2}([a-z0-9_-]+):\s*$/.exec(line);
    if (name) services.set((current = name[1]!), "");
    else if (current) services.set(current, `${services.get(current)}${line}\n`);
  }

  it("runs MariaDB, the database the tests run against", () => {
    const images = [...services.values()].map((s) => /^\s+image:\s*(\S+)/m.exec(s)?.[1]).filter(Boolean);
    expect(images.some((i) => i!.startsWith("mariadb:"))).toBe(true);
    expect(images.some((i) => i!.startsWith("mysql:"))).toBe(false);
  });

  it("gives every service a healthcheck and starts the service only once its backends are healthy", () => {
    expect(services.size).toBeGreaterThanOrEqual(3);
    for (const [name, block] of services) expect(block, name).toMatch(/^\s+healthcheck:/m);
    const identity = services.get("identity")!;
    const dependsOn = /depends_on:\n((?:\s{6,}.*\n)+)/.exec(identity)?.[1] ?? "";
    const backends = [...services.keys()].filter((n) => n !== "identity");
    for (const backend of backends) expect(dependsOn).toMatch(new RegExp(`${backend}:\\s*\\{\\s*condition:\\s*service_healthy\\s*\\}`));
  });

  it("publishes ports on 127.0.0.1 unless told otherwise", () => {
    const published = [...compose.matchAll(/ports:\s*\[([^\]]*)\]|ports:\n((?:\s+-.*\n)+)/g)]
      .flatMap((m) => (m[1] ?? m[2] ?? "").split(/,|\n/))
      .map((p) => p.replace(/^\s*-?\s*["']?|["']?\s*$/g, ""))
      .filter(Boolean);
    expect(published.length).toBeGreaterThan(0);
    for (const port of published) expect(port).toMatch(/^(127\.0\.0\.1|\$\{[A-Z_]+:-127\.0\.0\.1\}):/);
  });

  it("keeps .env, where the compose file's secrets live, out of git", () => {
    expect(
      readFileSync(join(ROOT, ".gitignore"), "utf8")
        .split("\n")
        .map((l) => l.trim()),
    ).toContain(".env");
  });
});
