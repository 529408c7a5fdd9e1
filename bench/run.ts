// `npm run bench`: the performance bars of DESIGN.md, measured in one run and
// printed as figures and ratios, honestly, including where they fall short.
//   1. ValidateSession over gRPC (4 connections × 16 streams, h2load where
//      installed) against a bare @grpc/grpc-js server (bench/baseline-server.ts)
//      and against the real service (`node src/main.ts`, MySQL + Redis, one
//      worker per core) holding a live session.
//   2. SignIn/s under load against the argon2 limit (cores ÷ one hash's time).
// It reports, it does not gate: the exit code is 0 whenever it could measure.
// Environment (all optional): BENCH_MYSQL_URL, BENCH_REDIS_URL, BENCH_SECONDS
// (each load phase, default 10), BENCH_CLIENT=node (skip h2load), BENCH_WORKERS.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import argon2 from "argon2";
import { Redis } from "ioredis";
import { createConnection } from "mysql2/promise";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ValidateSessionRequestSchema, ValidateSessionResponseSchema } from "../gen/identity/v1/session_service_pb.js";
import { ARGON2_PARAMS } from "../src/crypto/passwords.ts";
import { DEFAULT_TENANT_SETTINGS } from "../src/domain/tenants.ts";
import { grpcCall, grpcFrame, h2loadPath, runH2load, runNodeLoad, type LoadOptions, type LoadResult } from "./load.ts";
import { startInbox, type Inbox } from "./mail.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CORES = availableParallelism();
const LOAD_S = Number(process.env.BENCH_SECONDS || 10);
const WARM_UP_S = 2;
const CONNECTIONS = 4;
const STREAMS = 16;
const SIGN_IN_CLIENTS = 8;
const SIGN_IN_WARM_UP_S = 1;
const VALIDATE_PATH = "/identity.v1.SessionService/ValidateSession";
const RUN_ID = randomBytes(4).toString("hex");

const say = (line = "") => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a");
const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : "n/a");
const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)} %` : "n/a");
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

// ---------------------------------------------------------------- processes

interface Proc {
  child: ChildProcess;
  /** stdout/stderr lines, the last few hundred. */
  tail: string[];
  /** pino warn/error lines by message, for the report. */
  logged: Map<string, { level: string; count: number }>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Variables the service reads; none leaks in from the caller's shell. */
const SERVICE_VARIABLES = ["PORT", "HOST", "TLS_CERT_FILE", "TLS_KEY_FILE", "MYSQL_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "DATA_DIR", "SMTP_URL", "MAIL_FROM", "PUBLIC_URL", "KEY_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "PASSWORD_PEPPER", "CORS_ORIGINS", "LOG_LEVEL", "WORKERS", "TRUSTED_PROXIES", "VERIFICATION_LINK_TTL_SECONDS", "SHUTDOWN_GRACE_SECONDS", "UV_THREADPOOL_SIZE"];

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SERVICE_VARIABLES) delete env[name];
  return { ...env, ...extra };
}

function startProcess(script: string, env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [script], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  const logged = new Map<string, { level: string; count: number }>();
  const onLine = (line: string) => {
    if (line === "") return;
    tail.push(line);
    if (tail.length > 300) tail.shift();
    if (!line.startsWith("{")) return;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) < 40) return;
      const key = `${entry.msg ?? ""}${entry.err?.message ? `: ${entry.err.message}` : ""}`.slice(0, 160);
      const seen = logged.get(key) ?? { level: (entry.level ?? 0) >= 50 ? "error" : "warn", count: 0 };
      seen.count++;
      logged.set(key, seen);
    } catch {
      // not a log line
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop()!;
      lines.forEach(onLine);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    tail,
    logged,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const family = descendants(child.pid!);
      child.kill("SIGTERM");
      const done = await Promise.race([exited.then(() => true), sleep(12_000).then(() => false)]);
      if (!done) child.kill("SIGKILL");
      await sleep(200);
      // Workers of a killed primary: only the processes this bench started, by id.
      for (const pid of family) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    },
  };
}

function waitForLine(proc: Proc, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = () => {
      for (const line of proc.tail) {
        const match = pattern.exec(line);
        if (match) return resolve(match);
      }
      if (proc.child.exitCode !== null) return reject(new Error(`process exited (${proc.child.exitCode}):\n${proc.tail.slice(-20).join("\n")}`));
      if (Date.now() > deadline) return reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${proc.tail.slice(-20).join("\n")}`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// ------------------------------------------------------- CPU accounting (Linux /proc)

function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${p}/task/${task}/children`, "utf8");
      } catch {
        continue;
      }
      for (const c of children.split(" ").filter(Boolean).map(Number)) {
        out.push(c);
        visit(c);
      }
    }
  };
  visit(pid);
  return out;
}

/** CPU seconds (user + system) of a process and its descendants, by pid. */
function cpuByPid(root: number): Map<number, number> {
  const result = new Map<number, number>();
  for (const pid of [root, ...descendants(root)]) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      result.set(pid, (Number(fields[11]) + Number(fields[12])) / 100); // USER_HZ is 100 on Linux
    } catch {
      // exited
    }
  }
  return result;
}

/** Busy and total jiffies of the whole machine. */
function machineCpu(): { busy: number; total: number } {
  try {
    const [, ...values] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
    const n = values.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    return { busy: total - n[3]! - (n[4] ?? 0), total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

interface CpuWindow {
  /** Server CPU seconds per process over the window (primary first). */
  perProcess: number[];
  serverCores: number; // server CPU seconds per wall second
  machineBusy: number; // fraction of all cores
}

/** Samples CPU over [startAt, end()] for a server process tree. */
function cpuWindow(root: number, startAfterMs: number) {
  let before: Map<number, number> | undefined;
  let machineBefore: { busy: number; total: number } | undefined;
  let t0 = 0;
  const timer = setTimeout(() => {
    before = cpuByPid(root);
    machineBefore = machineCpu();
    t0 = performance.now();
  }, startAfterMs);
  return {
    end(): CpuWindow | undefined {
      clearTimeout(timer);
      if (!before || !machineBefore || !existsSync("/proc/stat")) return undefined;
      const after = cpuByPid(root);
      const machineAfter = machineCpu();
      const wall = (performance.now() - t0) / 1000;
      const perProcess = [...after].map(([pid, s]) => s - (before!.get(pid) ?? 0));
      const total = perProcess.reduce((a, b) => a + b, 0);
      return { perProcess, serverCores: total / wall, machineBusy: (machineAfter.busy - machineBefore!.busy) / (machineAfter.total - machineBefore!.total) };
    },
  };
}

// ----------------------------------------------------------------- Connect JSON

interface ConnectAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function connectCall(base: string, procedure: string, body: unknown, ip: string): Promise<ConnectAnswer> {
  const response = await fetch(`${base}/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1", "x-forwarded-for": ip },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { raw: text.slice(0, 200) };
  }
  return { status: response.status, body: parsed };
}

function expectOk(answer: ConnectAnswer, what: string): Record<string, unknown> {
  if (answer.status !== 200) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Runs `task(i)` for i in [0, count) with at most `width` at once. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) await task(next++);
  }));
}

/** A distinct client address per account (the service trusts one proxy hop in the bench). */
const addressOf = (i: number) => `10.${77 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

// ------------------------------------------------------------------------- phases

/** One hash's time alone (mean of 20), and hashes/s with one hash per core at once. */
async function measureArgon2(): Promise<{ oneMs: number; parallelPerS: number }> {
  const password = randomBytes(16).toString("base64url");
  for (let i = 0; i < 2; i++) await argon2.hash(password, { ...ARGON2_PARAMS }); // warm-up
  const rounds = 20;
  let started = performance.now();
  for (let i = 0; i < rounds; i++) await argon2.hash(password, { ...ARGON2_PARAMS });
  const oneMs = (performance.now() - started) / rounds;
  // This process's libuv pool has max(4, UV_THREADPOOL_SIZE) threads ≥ CORES here.
  started = performance.now();
  await pool(rounds * CORES, CORES, async () => void (await argon2.hash(password, { ...ARGON2_PARAMS })));
  return { oneMs, parallelPerS: (rounds * CORES) / ((performance.now() - started) / 1000) };
}

interface Account {
  email: string;
  ip: string;
  accountId: string;
}

async function createAccounts(base: string, inbox: Inbox, count: number, password: string): Promise<Account[]> {
  const accounts: Account[] = [];
  await pool(count, 8, async (i) => {
    const email = `bench${i}.${RUN_ID}@example.test`;
    const ip = addressOf(i);
    expectOk(await connectCall(base, "identity.v1.IdentityService/SignUp", { email, password, locale: "en" }, ip), `SignUp ${i}`);
    const token = await inbox.verificationToken(email, 60_000);
    const verified = expectOk(await connectCall(base, "identity.v1.IdentityService/VerifyIdentity", { token }, ip), `VerifyIdentity ${i}`);
    accounts[i] = { email, ip, accountId: String(verified.accountId) };
  });
  return accounts;
}

interface SignInResult {
  ok: number;
  perS: number;
  meanMs: number;
  p99Ms: number;
  errors: Map<string, number>;
  windowS: number;
  ranOut: boolean;
}

/** SIGN_IN_CLIENTS loops of SignIn; each account signs in at most `perAccount` times (its rate limit). */
async function signInLoad(base: string, accounts: Account[], password: string, perAccount: number): Promise<SignInResult> {
  const budget = accounts.length * perAccount;
  let issued = 0;
  const started = performance.now();
  const measureFrom = started + SIGN_IN_WARM_UP_S * 1000;
  const stopAt = measureFrom + LOAD_S * 1000;
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  let ranOutAt: number | undefined;
  await Promise.all(Array.from({ length: SIGN_IN_CLIENTS }, async () => {
    while (performance.now() < stopAt) {
      if (issued >= budget) {
        ranOutAt ??= performance.now();
        return;
      }
      const account = accounts[issued++ % accounts.length]!;
      const at = performance.now();
      let outcome = "ok";
      try {
        const answer = await connectCall(base, "identity.v1.SessionService/SignIn", { emailPassword: { email: account.email, password } }, account.ip);
        if (answer.status !== 200) outcome = `HTTP ${answer.status} ${String(answer.body.code ?? "")}`;
        else if (answer.body.accountId !== account.accountId) outcome = "wrong account";
      } catch (error) {
        outcome = (error as Error).message;
      }
      const end = performance.now();
      if (at < measureFrom || end > stopAt) continue;
      if (outcome === "ok") latencies.push(end - at);
      else errors.set(outcome, (errors.get(outcome) ?? 0) + 1);
    }
  }));
  const windowS = ((ranOutAt ?? stopAt) - measureFrom) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    ok: latencies.length,
    perS: latencies.length / windowS,
    meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p99Ms: latencies[Math.max(0, Math.ceil(latencies.length * 0.99) - 1)] ?? NaN,
    errors,
    windowS,
    ranOut: ranOutAt !== undefined,
  };
}

async function validateLoad(url: string, body: Buffer, expectedResponseBytes: number, serverPid: number): Promise<{ load: LoadResult; cpu: CpuWindow | undefined }> {
  const options: LoadOptions = { url, body, connections: CONNECTIONS, streams: STREAMS, warmUpS: WARM_UP_S, durationS: LOAD_S, expectedResponseBytes };
  const window = cpuWindow(serverPid, WARM_UP_S * 1000);
  const load = h2loadPath() ? await runH2load(options) : await runNodeLoad(options);
  return { load, cpu: window.end() };
}

/** One real ValidateSession: answers grpc-status 0 for the right account. */
async function checkValidate(url: string, body: Buffer, accountId: string | undefined): Promise<{ ok: boolean; detail: string; frameBytes: number }> {
  const answer = await grpcCall(url, body);
  if (answer.grpcStatus !== "0" || !answer.message) return { ok: false, detail: `HTTP ${answer.httpStatus}, grpc-status ${answer.grpcStatus} ${answer.grpcMessage ?? ""}`, frameBytes: 0 };
  const decoded = fromBinary(ValidateSessionResponseSchema, answer.message);
  if (accountId !== undefined && decoded.accountId !== accountId) return { ok: false, detail: `account ${decoded.accountId}, expected ${accountId}`, frameBytes: 0 };
  return { ok: true, detail: `grpc-status 0, account ${decoded.accountId}, tenant ${decoded.tenantId}`, frameBytes: answer.message.length + 5 };
}

// --------------------------------------------------------------------------- main

interface Report {
  argon2?: { oneMs: number; parallelPerS: number };
  baselines: Array<{ processes: number; load: LoadResult; cpu: CpuWindow | undefined }>;
  service?: { load: LoadResult; cpu: CpuWindow | undefined };
  serviceWorkers?: number;
  signIn?: SignInResult;
  checks: string[];
}

function printLoad(label: string, result: { load: LoadResult; cpu: CpuWindow | undefined }) {
  const { load, cpu } = result;
  say(`  ${label}: ${fmt(load.callsPerS)} calls/s, mean ${ms(load.meanMs)}, p50 ${ms(load.p50Ms)}, p99 ${ms(load.p99Ms)}, max ${ms(load.maxMs)} (${fmt(load.calls)} calls in ${LOAD_S} s)`);
  say(`    answers: ${load.check}`);
  if (cpu) {
    const perCall = (cpu.serverCores * 1e6) / load.callsPerS;
    say(`    server CPU: ${cpu.serverCores.toFixed(2)} cores [${cpu.perProcess.map((s) => (s / LOAD_S).toFixed(2)).join(" + ")}] = ${fmt(perCall)} µs per call; machine ${pct(cpu.machineBusy)} busy (client included)`);
  }
}

async function main(): Promise<number> {
  const cleanups: Array<() => Promise<unknown>> = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const step of cleanups.reverse()) {
        try {
          await step();
        } catch (error) {
          say(`cleanup: ${(error as Error).message}`);
        }
      }
    })());
  const interrupted = () => void cleanup().then(() => process.exit(130));
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  const report: Report = { baselines: [], checks: [] };
  const mysqlUrl = new URL(process.env.BENCH_MYSQL_URL || "mysql://root@127.0.0.1:3306");
  const redisUrl = process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379";
  const database = `identity_bench_${RUN_ID}`;
  const redisPrefix = `identity-bench-${RUN_ID}:`;
  const client = h2loadPath();
  const wallStart = performance.now();
  let failed = false;

  say(`identity service benchmark — ${CORES} cores, Node ${process.versions.node}, run ${RUN_ID}`);
  say(client ? `load client: h2load (${CONNECTIONS} connections × ${STREAMS} streams, ${WARM_UP_S} s warm-up + ${LOAD_S} s)` : `load client: h2load NOT FOUND (or BENCH_CLIENT=node) — using the node:http2 fallback in this process (${CONNECTIONS} connections × ${STREAMS} streams); its own CPU competes with the servers, so figures are lower than with h2load and not comparable with DESIGN.md's`);
  try {
    // argon2 first, on an idle machine.
    report.argon2 = await measureArgon2();
    const argon2Limit = CORES / (report.argon2.oneMs / 1000);
    say(`argon2id (m=${ARGON2_PARAMS.memoryCost} KiB, t=${ARGON2_PARAMS.timeCost}, p=${ARGON2_PARAMS.parallelism}): ${ms(report.argon2.oneMs)} per hash alone (mean of 20) → limit ${fmt(argon2Limit, 1)} sign-ins/s on ${CORES} cores`);
    say(`  (${CORES} hashes at once in this process: ${fmt(report.argon2.parallelPerS, 1)} hashes/s = ${pct(report.argon2.parallelPerS / argon2Limit)} of that limit: what the cores give when they all hash)`);

    // Backends.
    const admin = await createConnection({ host: mysqlUrl.hostname, port: Number(mysqlUrl.port || 3306), user: decodeURIComponent(mysqlUrl.username || "root"), password: decodeURIComponent(mysqlUrl.password) });
    await admin.query(`CREATE DATABASE \`${database}\``);
    cleanups.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.end();
    });
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redis.connect();
    cleanups.push(async () => {
      let cursor = "0";
      let deleted = 0;
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
        cursor = next;
        if (keys.length > 0) deleted += await redis.del(...keys);
      } while (cursor !== "0");
      say(`cleanup: dropped database ${database}, deleted ${deleted} Redis keys under ${redisPrefix}`);
      redis.disconnect();
    });
    const inbox = await startInbox();
    cleanups.push(() => inbox.close());
    const dataDir = mkdtempSync(join(tmpdir(), "identity-bench-"));
    cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));

    // The service, production shape.
    const port = await freePort();
    const serviceMysql = new URL(mysqlUrl);
    serviceMysql.pathname = `/${database}`;
    const service = startProcess("src/main.ts", cleanEnv({
      PORT: String(port),
      HOST: "127.0.0.1",
      MYSQL_URL: serviceMysql.toString(),
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: redisPrefix,
      KEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
      BLIND_INDEX_KEY: randomBytes(32).toString("base64"),
      LOG_LEVEL: "warn",
      DATA_DIR: dataDir,
      SMTP_URL: `smtp://127.0.0.1:${inbox.port}`,
      MAIL_FROM: "Identity bench <bench@example.test>",
      PUBLIC_URL: "https://bench.example.test",
      // Load comes from one address; as behind a proxy, each simulated user gets its own.
      TRUSTED_PROXIES: "1",
      ...(process.env.BENCH_WORKERS ? { WORKERS: process.env.BENCH_WORKERS } : {}),
    }));
    cleanups.push(() => service.stop());
    const listening = await waitForLine(service, /identity service listening on \S+(?: \((\d+) workers\))?/, 60_000);
    report.serviceWorkers = Number(listening[1] ?? 1);
    const base = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 30_000; ; ) {
      const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status === 200, () => false);
      if (ready) break;
      if (Date.now() > deadline || service.child.exitCode !== null) throw new Error(`service not ready:\n${service.tail.slice(-20).join("\n")}`);
      await sleep(100);
    }
    say(`service: node src/main.ts on ${base}, ${report.serviceWorkers} worker(s), MariaDB ${database}, Redis prefix ${redisPrefix}`);

    // Accounts: one for the validated session, and enough for SignIn at the argon2
    // limit within each account's sign-in budget (tenant default, 15 min window).
    const perAccount = DEFAULT_TENANT_SETTINGS.signInPerAccountLimit;
    const signInAccounts = Math.ceil((argon2Limit * (LOAD_S + SIGN_IN_WARM_UP_S) * 1.3) / perAccount);
    const password = `Bench-${randomBytes(18).toString("base64url")}`;
    const setupStart = performance.now();
    const accounts = await createAccounts(base, inbox, 1 + signInAccounts, password);
    say(`setup: ${accounts.length} accounts signed up and verified through SMTP in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);
    const [owner, ...signInPool] = accounts as [Account, ...Account[]];
    const signedIn = expectOk(await connectCall(base, "identity.v1.SessionService/SignIn", { emailPassword: { email: owner.email, password } }, owner.ip), "SignIn");
    const sessionToken = String(signedIn.sessionToken);
    const body = grpcFrame(toBinary(ValidateSessionRequestSchema, create(ValidateSessionRequestSchema, { sessionToken })));
    let keys = 0;
    for (let cursor = "0", first = true; first || cursor !== "0"; first = false) {
      const [next, found] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
      cursor = next;
      keys += found.length;
    }
    if (keys === 0) report.checks.push(`the service wrote no Redis key under REDIS_KEY_PREFIX=${redisPrefix}: it ignores the prefix, so its keys are NOT cleaned up`);

    // 1. Baseline.
    say();
    say("ValidateSession over gRPC");
    // The bare server as DESIGN.md measured it (one process), and in the service's
    // shape (one node:cluster worker per core) so the ratio compares like with like.
    for (const processes of [...new Set([1, report.serviceWorkers])]) {
      const baseline = startProcess("bench/baseline-server.ts", cleanEnv({ BASELINE_WORKERS: String(processes), BASELINE_PORT: String(processes > 1 ? await freePort() : 0) }));
      cleanups.push(() => baseline.stop());
      const baselinePort = Number((await waitForLine(baseline, /^port (\d+)/, 30_000))[1]);
      const baselineUrl = `http://127.0.0.1:${baselinePort}${VALIDATE_PATH}`;
      const baselineCheck = await checkValidate(baselineUrl, body, undefined);
      if (!baselineCheck.ok) throw new Error(`baseline answered ${baselineCheck.detail}`);
      const measured = await validateLoad(baselineUrl, body, baselineCheck.frameBytes, baseline.child.pid!);
      report.baselines.push({ processes, ...measured });
      printLoad(`bare grpc-js, ${processes === 1 ? "1 process" : `${processes} workers`}`, measured);
      await baseline.stop();
    }

    // 2. The service.
    const serviceUrl = `${base}${VALIDATE_PATH}`;
    const before = await checkValidate(serviceUrl, body, owner.accountId);
    if (!before.ok) throw new Error(`service ValidateSession answered ${before.detail}`);
    report.service = await validateLoad(serviceUrl, body, before.frameBytes, service.child.pid!);
    printLoad(`service (${report.serviceWorkers} workers)`, report.service);
    const after = await checkValidate(serviceUrl, body, owner.accountId);
    say(`  one real call before and after the load: ${before.detail}; after: ${after.ok ? "OK" : after.detail}`);
    if (!after.ok) report.checks.push(`ValidateSession after the load answered ${after.detail}`);

    // 3. SignIn under load.
    say();
    say(`SignIn under load (Connect JSON over HTTP/1.1, ${SIGN_IN_CLIENTS} clients, ${SIGN_IN_WARM_UP_S} s warm-up + ${LOAD_S} s; ${signInPool.length} accounts × ≤${perAccount} sign-ins each, one client address per account)`);
    const signInCpu = cpuWindow(service.child.pid!, SIGN_IN_WARM_UP_S * 1000);
    report.signIn = await signInLoad(base, signInPool, password, perAccount);
    const cpu = signInCpu.end();
    const s = report.signIn;
    say(`  ${fmt(s.perS, 1)} sign-ins/s (${s.ok} OK in ${s.windowS.toFixed(1)} s), mean ${ms(s.meanMs)}, p99 ${ms(s.p99Ms)}${s.ranOut ? " — stopped early: the accounts' sign-in budget ran out" : ""}`);
    if (s.errors.size > 0) say(`  errors: ${[...s.errors].map(([k, v]) => `${v}× ${k}`).join(", ")}`);
    if (cpu) say(`    server CPU: ${cpu.serverCores.toFixed(2)} cores [${cpu.perProcess.map((c) => (c / s.windowS).toFixed(2)).join(" + ")}] = ${ms((cpu.serverCores * 1000) / s.perS)} per sign-in (one hash alone: ${ms(report.argon2.oneMs)}); machine ${pct(cpu.machineBusy)} busy (database, Redis and client included)`);

    // Service log.
    const logged = [...service.logged].sort((a, b) => b[1].count - a[1].count);
    say();
    say(logged.length === 0 ? "service log: no warnings or errors" : `service log (warn and above):`);
    for (const [message, { level, count }] of logged.slice(0, 8)) say(`  ${count}× ${level}: ${message}`);

    // Summary.
    const signInRatio = s.perS / argon2Limit;
    const verdict = (ok: boolean) => (ok ? "PASS" : "SHORT");
    const serviceLoad = report.service.load;
    const shape = (processes: number) => (processes === 1 ? "1 process" : `${processes} workers`);
    const perCall = (r: { load: LoadResult; cpu: CpuWindow | undefined }) => (r.cpu ? (r.cpu.serverCores * 1e6) / r.load.callsPerS : NaN);
    const rows: string[][] = [
      ["measure", "figure", "reference", "ratio", "goal", ""],
      ...report.baselines.map((b) => [`ValidateSession, bare grpc-js, ${shape(b.processes)}`, `${fmt(b.load.callsPerS)}/s`, `p99 ${ms(b.load.p99Ms)}`, "", "", ""]),
      [`ValidateSession, service, ${shape(report.serviceWorkers)}`, `${fmt(serviceLoad.callsPerS)}/s`, `p99 ${ms(serviceLoad.p99Ms)}`, "", "", ""],
      ...report.baselines.map((b) => {
        const ratio = serviceLoad.callsPerS / b.load.callsPerS;
        return [`  service ÷ bare grpc-js, ${shape(b.processes)}`, "", "", pct(ratio), "≥ 80 %", verdict(ratio >= 0.8)];
      }),
      ...report.baselines.map((b) => [`  server CPU per call, service vs bare ${shape(b.processes)}`, `${fmt(perCall(report.service!))} µs`, `${fmt(perCall(b))} µs`, pct(perCall(b) / perCall(report.service!)), "", ""]),
      ["ValidateSession p99, service", ms(serviceLoad.p99Ms), "", "", "< 5 ms", verdict(serviceLoad.p99Ms < 5)],
      ["SignIn", `${fmt(s.perS, 1)}/s`, `${fmt(argon2Limit, 1)}/s argon2`, pct(signInRatio), "≥ 90 %", verdict(signInRatio >= 0.9)],
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    say();
    say(`summary (${client ?? "node:http2 fallback client"}, ${CONNECTIONS}×${STREAMS} streams; ${CORES} cores shared by servers, client, MariaDB and Redis)`);
    for (const row of rows) say(`  ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")}`);
    for (const check of report.checks) say(`  ! ${check}`);
  } catch (error) {
    failed = true;
    say(`bench failed: ${(error as Error).stack ?? error}`);
  } finally {
    await cleanup();
    say(`total ${((performance.now() - wallStart) / 1000).toFixed(0)} s`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
