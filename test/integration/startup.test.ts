// Start-up as an operator sees it: the real entry point (node src/main.ts) as a
// child process, with backends missing, refusing or misconfigured. Exit codes and
// log lines are what is asserted.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS, createMysqlDatabase, MYSQL_ADMIN_URL, REDIS_URL, redisPrefix } from "../support/backends.ts";
import { createCaller } from "../support/clients.ts";
import { startTcpProxy, viaProxy, type TcpProxy } from "../support/proxy.ts";

const EX_CONFIG = 78;

interface Service {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the port once the service says it listens. */
  listening(withinMs?: number): Promise<number>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const running = new Set<Service>();
const dataDirs: string[] = [];

function startMain(env: Record<string, string>): Service {
  const dataDir = mkdtempSync(join(tmpdir(), "identity-startup-"));
  dataDirs.push(dataDir);
  const child = spawn(process.execPath, ["src/main.ts"], {
    cwd: process.cwd(),
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      LOG_LEVEL: "info",
      SHUTDOWN_GRACE_SECONDS: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const service: Service = {
    child,
    output: () => text,
    async listening(withinMs = 30_000) {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const match = /identity service listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
        if (match) return Number(match[1]);
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before listening:\n${text}`);
        if (Date.now() > deadline) throw new Error(`not listening within ${withinMs} ms:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    exited,
    async stop() {
      running.delete(service);
      if (child.exitCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(service);
  return service;
}

/** Waits for the exit code, killing the process if it has not exited within `withinMs`. */
async function exitCode(service: Service, withinMs = 30_000): Promise<number | null> {
  const timer = setTimeout(() => service.child.kill("SIGKILL"), withinMs);
  const code = await service.exited;
  clearTimeout(timer);
  running.delete(service);
  return code;
}

async function eventually(condition: () => Promise<boolean> | boolean, withinMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const key = () => randomBytes(32).toString("base64");
const count = (text: string, pattern: RegExp) => text.split("\n").filter((line) => pattern.test(line)).length;

afterEach(async () => {
  await Promise.all([...running].map((s) => s.stop()));
});

afterAll(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe("configuration refused at start (exit 78, one line naming the variable)", () => {
  it("production (MYSQL_URL and REDIS_URL) without SMTP_URL: messages would put live links in the log", async () => {
    const service = startMain({
      MYSQL_URL: "mysql://root@127.0.0.1:9/none",
      REDIS_URL: "redis://127.0.0.1:9",
      KEY_ENCRYPTION_KEYS: key(),
      BLIND_INDEX_KEY: key(),
    });
    expect(await exitCode(service)).toBe(EX_CONFIG);
    expect(service.output().trim().split("\n")).toEqual([expect.stringMatching(/^invalid configuration: SMTP_URL is required .*DEVELOPMENT_MODE=true/)]);
  });

  it("production with SMTP_URL but no SMS provider: phone codes would have nowhere to go", async () => {
    const service = startMain({
      MYSQL_URL: "mysql://root@127.0.0.1:9/none",
      REDIS_URL: "redis://127.0.0.1:9",
      KEY_ENCRYPTION_KEYS: key(),
      BLIND_INDEX_KEY: key(),
      SMTP_URL: "smtp://127.0.0.1:25",
    });
    expect(await exitCode(service)).toBe(EX_CONFIG);
    expect(service.output().trim().split("\n")).toEqual([expect.stringMatching(/^invalid configuration: SMS_PROVIDER is required .*SMS_PROVIDER=none/)]);
  });

  it("a misspelled MYSQL_URL with production keys does not quietly mean development mode", async () => {
    const service = startMain({
      MYSQL_ULR: "mysql://root@127.0.0.1:3306/identity",
      REDIS_URL_: "redis://127.0.0.1:6379",
      KEY_ENCRYPTION_KEYS: key(),
      BLIND_INDEX_KEY: key(),
      SMTP_URL: "smtp://127.0.0.1:25",
    });
    expect(await exitCode(service)).toBe(EX_CONFIG);
    const lines = service.output().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^invalid configuration: MYSQL_URL and REDIS_URL are not set, but .*MYSQL_ULR/);
    expect(lines[0]).toContain("DEVELOPMENT_MODE=true");
  });
});

describe.skipIf(!BACKENDS.includes("mysql"))("backends at start", () => {
  let database: { url: string; drop: () => Promise<void> };
  const production = (mysqlUrl: string, redisUrl: string, extra: Record<string, string> = {}) => ({
    MYSQL_URL: mysqlUrl,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: redisPrefix(),
    KEY_ENCRYPTION_KEYS: key(),
    BLIND_INDEX_KEY: key(),
    SMTP_URL: "smtp://127.0.0.1:9",
    SMS_PROVIDER: "none",
    WORKERS: "1",
    ...extra,
  });

  beforeAll(async () => {
    database = await createMysqlDatabase();
  });

  afterAll(async () => {
    await database?.drop();
  });

  it("MySQL refusing the password: exit 78 with one line naming MYSQL_URL, no stack trace", async () => {
    const url = new URL(database.url);
    url.username = "identity_nobody";
    const password = `pw${randomBytes(6).toString("hex")}`;
    url.password = password;
    const service = startMain(production(url.toString(), REDIS_URL));
    expect(await exitCode(service)).toBe(EX_CONFIG);
    const output = service.output();
    expect(output).toMatch(/^invalid configuration: MYSQL_URL is refused by the server: access denied/m);
    expect(output).not.toContain(password);
    expect(output).not.toMatch(/^\s+at /m);
  });

  it("MySQL without the named database: exit 78 with one line naming MYSQL_URL", async () => {
    const url = new URL(MYSQL_ADMIN_URL);
    url.pathname = `/identity_missing_${randomBytes(4).toString("hex")}`;
    const service = startMain(production(url.toString(), REDIS_URL));
    expect(await exitCode(service)).toBe(EX_CONFIG);
    expect(service.output()).toMatch(/^invalid configuration: MYSQL_URL names a database that does not exist/m);
    expect(service.output()).not.toMatch(/^\s+at /m);
  });

  describe("through a proxy", () => {
    let proxy: TcpProxy;
    afterEach(async () => {
      await proxy?.close();
    });

    it.each(["refuse", "stall"] as const)("MySQL unreachable (%s): one line naming MYSQL_URL, retried with backoff, serving once it answers", async (mode) => {
      const target = new URL(MYSQL_ADMIN_URL);
      proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 3306) }, mode);
      const service = startMain(production(viaProxy(database.url, proxy), REDIS_URL));
      await eventually(() => /MYSQL_URL: the database cannot be reached/.test(service.output()), 20_000, service.output);
      await new Promise((r) => setTimeout(r, 2500)); // several retries
      expect(service.child.exitCode).toBeNull();
      expect(count(service.output(), /cannot be reached/)).toBe(1);
      expect(service.output()).not.toMatch(/^\s+at /m);

      proxy.mode("forward");
      const port = await service.listening(30_000);
      expect(count(service.output(), /the database answers/)).toBe(1);
      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 10_000, service.output);
    });

    it.each(["refuse", "stall"] as const)(
      "Redis unreachable (%s): the port opens, not ready, Unavailable, one line per change, ready on its own when Redis arrives",
      async (mode) => {
        const target = new URL(REDIS_URL);
        proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) }, mode);
        const service = startMain(production(database.url, viaProxy(REDIS_URL, proxy), { LOG_LEVLE: "debug" }));
        const port = await service.listening(30_000);
        const base = `http://127.0.0.1:${port}`;
        expect(service.output()).toContain("unknown variable LOG_LEVLE is ignored (did you mean LOG_LEVEL?)");

        const started = Date.now();
        expect((await fetch(`${base}/readyz`)).status).toBe(503);
        expect(Date.now() - started).toBeLessThan(1000);
        const health = createClient(Health, createGrpcTransport({ baseUrl: base }));
        expect((await health.check({ service: "" })).status).toBe(Status.NOT_SERVING);
        const caller = createCaller("connect-json-h1", base);
        const refused = await caller
          .call(SessionService.method.signIn, {
            method: { case: "emailPassword", value: { email: "someone@example.test", password: "not the password at all" } },
          })
          .catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(ConnectError);
        expect((refused as ConnectError).code).toBe(Code.Unavailable);

        await new Promise((r) => setTimeout(r, 2000)); // readiness checks every second
        expect(count(service.output(), /redis \(REDIS_URL\) does not answer/)).toBe(1);
        expect(service.output()).not.toContain("Unhandled error event");

        proxy.mode("forward");
        await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 15_000, service.output);
        expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
        expect(count(service.output(), /redis \(REDIS_URL\) answers again/)).toBe(1);
        const answered = await caller
          .call(SessionService.method.signIn, {
            method: { case: "emailPassword", value: { email: "someone@example.test", password: "not the password at all" } },
          })
          .catch((e: unknown) => e);
        expect((answered as ConnectError).code).toBe(Code.Unauthenticated);
        expect(service.child.exitCode).toBeNull();
      },
    );
  });
});
