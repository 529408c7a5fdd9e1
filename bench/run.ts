// `npm run bench`: the performance bars of DESIGN.md, measured in one run and
// printed as figures and ratios, honestly, including where they fall short.
//   1. ValidateSession over gRPC (4 connections × 16 streams, h2load where
//      installed) against a bare @grpc/grpc-js server and node:http2 alone
//      answering a canned frame (bench/baseline-server.ts)
//      and against the real service (`node src/main.ts`, MySQL + Redis, one
//      worker per core) holding a live session.
//   2. SignIn/s under load against the argon2 limit (cores ÷ one hash's time).
// It reports, it does not gate: the exit code is 0 whenever it could measure.
// Environment (all optional): BENCH_MYSQL_URL, BENCH_REDIS_URL, BENCH_SECONDS
// (each load phase, default 10), BENCH_CLIENT=node (skip h2load), BENCH_WORKERS,
// BENCH_SERVICE_DIR (benchmark another checkout's service), BENCH_CPU_PROF (profile it).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import argon2 from "argon2";
import { Redis } from "ioredis";
import { createConnection, type Connection } from "mysql2/promise";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ValidateSessionRequestSchema, ValidateSessionResponseSchema } from "../gen/identity/v1/session_service_pb.js";
import { ARGON2_PARAMS } from "../src/crypto/passwords.ts";
import { DEFAULT_TENANT_SETTINGS } from "../src/domain/tenants.ts";
import { grpcCall, grpcFrame, h2loadPath, runH2load, runNodeLoad, stopLoad, type LoadOptions, type LoadResult } from "./load.ts";
import { startInbox, type Inbox } from "./mail.ts";
import { createSeeder, listUsersTokenAfter } from "./accounts.ts";
import { benchValidator, median, p99, type ValidatorBench } from "./validator.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CORES = availableParallelism();
const LOAD_S = Number(process.env.BENCH_SECONDS || 10);
const WARM_UP_S = 2;
const CONNECTIONS = 4;
const STREAMS = 16;
const SIGN_IN_CLIENTS = 8;
const SIGN_IN_WARM_UP_S = 1;
/** The latency probe below saturation: same connections, one call in flight on each. */
const LIGHT_STREAMS = 1;
const LIGHT_S = 5;
const VALIDATE_PATH = "/identity.v1.SessionService/ValidateSession";
const RUN_ID = randomBytes(4).toString("hex");
/** `--accounts N` or BENCH_ACCOUNTS=N: also measure the main RPCs at 1,000 accounts and at N (0: skip). */
const ACCOUNTS = (() => {
  const flag = process.argv.indexOf("--accounts");
  const raw = flag >= 0 ? process.argv[flag + 1] : process.env.BENCH_ACCOUNTS;
  const n = Number(raw || 0);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--accounts / BENCH_ACCOUNTS must be a whole number, got ${raw}`);
  return n;
})();
const SMALL_ACCOUNTS = 1000;
const SKIP_VALIDATE = process.env.BENCH_SKIP_VALIDATE === "1";
/** Sign-outs timed on their way to two session validators (the published client's). */
const REVOCATION_SAMPLES = 50;
/**
 * BENCH_SERVICE_DIR: the checkout whose `src/main.ts` is benchmarked (default: this one), so
 * an earlier commit, checked out elsewhere with its own `npm ci`, runs under this bench's
 * load, baselines and accounting: a before/after comparison in the same terms.
 */
const SERVICE_DIR = process.env.BENCH_SERVICE_DIR ? resolve(process.env.BENCH_SERVICE_DIR) : ROOT;
/**
 * BENCH_CPU_PROF=dir: the service's processes (primary and workers) write V8 CPU profiles
 * there when they exit (`node bench/profile-top.ts dir`). Not NODE_OPTIONS: npm's own Node
 * refuses --cpu-prof there, and the bench process and baselines would be profiled too.
 */
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined;

/** The commit checked out in `dir` (and "+ changes" when its tree differs), for the report. */
function commitOf(dir: string): string {
  try {
    const run = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return `${run("rev-parse", "--short", "HEAD")}${run("status", "--porcelain", "--untracked-files=no", "--", "src") ? " + uncommitted changes in src/" : ""}`;
  } catch {
    return "not a git checkout";
  }
}

/** CLOCK_MONOTONIC in µs: the clock of a V8 CPU profile's timestamps. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const say = (line = "") => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "n/a";
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
const SERVICE_VARIABLES = [
  "PORT",
  "HOST",
  "TLS_CERT_FILE",
  "TLS_KEY_FILE",
  "MYSQL_URL",
  "REDIS_URL",
  "REDIS_KEY_PREFIX",
  "DATA_DIR",
  "SMTP_URL",
  "SMS_PROVIDER",
  "MAIL_FROM",
  "PUBLIC_URL",
  "KEY_ENCRYPTION_KEYS",
  "BLIND_INDEX_KEY",
  "PASSWORD_PEPPER",
  "CORS_ORIGINS",
  "LOG_LEVEL",
  "WORKERS",
  "TRUSTED_PROXIES",
  "VERIFICATION_LINK_TTL_SECONDS",
  "SHUTDOWN_GRACE_SECONDS",
  "UV_THREADPOOL_SIZE",
];

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of SERVICE_VARIABLES) delete env[name];
  return { ...env, ...extra };
}

function startProcess(script: string, env: NodeJS.ProcessEnv, options: { cwd?: string; nodeFlags?: string[] } = {}): Proc {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), script], { cwd: options.cwd ?? ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
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

/** CPU seconds (user + system) in a /proc stat file (a process's or one thread's). */
function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

/** CPU seconds (user + system) of a process and its descendants, by pid. */
function cpuByPid(root: number): Map<number, number> {
  const result = new Map<number, number>();
  for (const pid of [root, ...descendants(root)]) {
    try {
      result.set(pid, statCpuSeconds(`/proc/${pid}/stat`));
    } catch {
      // exited
    }
  }
  return result;
}

/**
 * CPU seconds of each process's main thread (the JavaScript thread), by pid: the rest
 * of a process's CPU is its threads (argon2 on the libuv threadpool, V8's GC helpers).
 */
function mainThreadCpuByPid(root: number): Map<number, number> {
  const result = new Map<number, number>();
  for (const pid of [root, ...descendants(root)]) {
    try {
      result.set(pid, statCpuSeconds(`/proc/${pid}/task/${pid}/stat`));
    } catch {
      // exited
    }
  }
  return result;
}

/** CPU seconds of this process, its reaped children (h2load once it exits) and its live descendants. */
function benchCpu(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const own = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    let live = 0;
    for (const [pid, seconds] of cpuByPid(process.pid)) if (pid !== process.pid) live += seconds;
    return own + live;
  } catch {
    return NaN;
  }
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
  serverMainThreadCores: number; // of which on the processes' main (JavaScript) threads
  clientCores: number; // this bench and its load generator
  otherCores: number; // everything else on the machine: MariaDB, Redis, and anyone else's work
  machineBusy: number; // fraction of all cores
}

const sum = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

/** Samples CPU from `startAfterMs` from now until end() for a server process tree. */
function cpuWindow(root: number, startAfterMs: number) {
  let before:
    | { server: Map<number, number>; mainThreads: Map<number, number>; bench: number; machine: { busy: number; total: number }; at: number }
    | undefined;
  const timer = setTimeout(() => {
    before = { server: cpuByPid(root), mainThreads: mainThreadCpuByPid(root), bench: benchCpu(), machine: machineCpu(), at: performance.now() };
  }, startAfterMs);
  return {
    end(): CpuWindow | undefined {
      clearTimeout(timer);
      if (!before || !existsSync("/proc/stat")) return undefined;
      const server = cpuByPid(root);
      const mainThreads = mainThreadCpuByPid(root);
      const bench = benchCpu() - before.bench; // includes the servers, children of this process
      const machine = machineCpu();
      const wall = (performance.now() - before.at) / 1000;
      const perProcess = [...server].map(([pid, s]) => s - (before!.server.get(pid) ?? 0));
      const serverCores = sum(perProcess) / wall;
      const serverMainThreadCores = sum([...mainThreads].map(([pid, s]) => s - (before!.mainThreads.get(pid) ?? 0))) / wall;
      const machineBusy = (machine.busy - before.machine.busy) / (machine.total - before.machine.total);
      return {
        perProcess,
        serverCores,
        serverMainThreadCores,
        clientCores: bench / wall - serverCores,
        otherCores: Math.max(0, machineBusy * CORES - bench / wall),
        machineBusy,
      };
    },
  };
}

/** An API key with sessions.validate in the default tenant, made as an operator would (`npm run admin -- create-api-key`). */
function createApiKeyWithCli(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["src/cli/admin.ts", "create-api-key", "--tenant", "default", "--name", "bench validator", "--permissions", "sessions.validate"],
      { cwd: ROOT, env: cleanEnv(env), timeout: 60_000 },
      (error, stdout, stderr) => {
        const secret = stdout.trim();
        if (error || !secret.startsWith("idk_")) reject(new Error(`create-api-key failed: ${error?.message ?? ""} ${stderr}`));
        else resolve(secret);
      },
    );
  });
}

// ----------------------------------------------------------------- Connect JSON

interface ConnectAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function connectCall(base: string, procedure: string, body: unknown, ip: string, headers: Record<string, string> = {}): Promise<ConnectAnswer> {
  const response = await fetch(`${base}/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1", "x-forwarded-for": ip, ...headers },
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

/** A server-streaming call over the Connect protocol (JSON): every message, or the stream's error. */
async function connectStream(base: string, procedure: string, body: unknown, ip: string, headers: Record<string, string>): Promise<ConnectAnswer> {
  const json = Buffer.from(JSON.stringify(body));
  const envelope = Buffer.alloc(5 + json.length);
  envelope.writeUInt32BE(json.length, 1);
  json.copy(envelope, 5);
  const response = await fetch(`${base}/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "x-forwarded-for": ip, ...headers },
    body: envelope,
    signal: AbortSignal.timeout(60_000),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const messages: unknown[] = [];
  let end: Record<string, unknown> = {};
  for (let at = 0; at + 5 <= bytes.length; ) {
    const flags = bytes[at]!;
    const length = bytes.readUInt32BE(at + 1);
    const parsed = JSON.parse(bytes.subarray(at + 5, at + 5 + length).toString("utf8")) as Record<string, unknown>;
    if (flags & 2) end = parsed;
    else messages.push(parsed);
    at += 5 + length;
  }
  if (response.status !== 200 || end.error) return { status: response.status === 200 ? 500 : response.status, body: end };
  return { status: 200, body: { messages } };
}

function expectOk(answer: ConnectAnswer, what: string): Record<string, unknown> {
  if (answer.status !== 200) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Runs `task(i)` for i in [0, count) with at most `width` at once. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/** A distinct client address per account (the service trusts one proxy hop in the bench). */
const addressOf = (i: number) => `10.${77 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

// ------------------------------------------------------------------------- phases

/** Phases during which something outside the bench used the cores (other people's tests, say). */
const foreignLoad: string[] = [];
function noteForeign(phase: string, cores: number) {
  if (cores > 0.1) foreignLoad.push(`${phase}: ~${cores.toFixed(2)} cores used outside the bench`);
}

interface Argon2Timing {
  oneMs: number; // mean of 20 hashes, one at a time
  minMs: number;
  maxMs: number;
  parallelPerS: number; // hashes/s with one hash per core at once
}

async function measureArgon2(): Promise<Argon2Timing> {
  const password = randomBytes(16).toString("base64url");
  for (let i = 0; i < 2; i++) await argon2.hash(password, { ...ARGON2_PARAMS }); // warm-up
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const at = performance.now();
    await argon2.hash(password, { ...ARGON2_PARAMS });
    times.push(performance.now() - at);
  }
  // This process's libuv pool has max(4, UV_THREADPOOL_SIZE) threads ≥ CORES here.
  const started = performance.now();
  await pool(times.length * CORES, CORES, async () => void (await argon2.hash(password, { ...ARGON2_PARAMS })));
  return {
    oneMs: times.reduce((a, b) => a + b, 0) / times.length,
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    parallelPerS: (times.length * CORES) / ((performance.now() - started) / 1000),
  };
}

/** Fraction of the machine's CPU busy over `ms` (other work would skew every figure). */
async function machineBusyOver(ms: number): Promise<number> {
  const before = machineCpu();
  await sleep(ms);
  const after = machineCpu();
  return (after.busy - before.busy) / (after.total - before.total);
}

interface Account {
  email: string;
  ip: string;
  accountId: string;
  /** The session VerifyIdentity signed in. */
  sessionToken: string;
}

async function createAccounts(base: string, inbox: Inbox, count: number, password: string): Promise<Account[]> {
  const accounts: Account[] = [];
  await pool(count, 8, async (i) => {
    const email = `bench${i}.${RUN_ID}@example.test`;
    const ip = addressOf(i);
    expectOk(await connectCall(base, "identity.v1.IdentityService/SignUp", { email, password, locale: "en" }, ip), `SignUp ${i}`);
    const token = await inbox.verificationToken(email, 60_000);
    const verified = expectOk(await connectCall(base, "identity.v1.IdentityService/VerifyIdentity", { token }, ip), `VerifyIdentity ${i}`);
    accounts[i] = { email, ip, accountId: String(verified.accountId), sessionToken: String(verified.sessionToken) };
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
  await Promise.all(
    Array.from({ length: SIGN_IN_CLIENTS }, async () => {
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
    }),
  );
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

interface Measured {
  /** CONNECTIONS × STREAMS: throughput and latency at saturation. */
  full: { load: LoadResult; cpu: CpuWindow | undefined };
  /** CONNECTIONS × LIGHT_STREAMS: latency below saturation. */
  light: LoadResult;
}

async function validateLoad(label: string, url: string, body: Buffer, expectedResponseBytes: number, serverPid: number): Promise<Measured> {
  const run = (options: LoadOptions) => (h2loadPath() ? runH2load(options) : runNodeLoad(options));
  const options: LoadOptions = { url, body, connections: CONNECTIONS, streams: STREAMS, warmUpS: WARM_UP_S, durationS: LOAD_S, expectedResponseBytes };
  const window = cpuWindow(serverPid, WARM_UP_S * 1000);
  const load = await run(options);
  const cpu = window.end();
  if (cpu) noteForeign(`ValidateSession, ${label}`, cpu.otherCores);
  const light = await run({ ...options, streams: LIGHT_STREAMS, warmUpS: 1, durationS: LIGHT_S });
  return { full: { load, cpu }, light };
}

/** One real ValidateSession: answers grpc-status 0 for the right account. */
async function checkValidate(url: string, body: Buffer, accountId: string | undefined): Promise<{ ok: boolean; detail: string; frameBytes: number }> {
  const answer = await grpcCall(url, body);
  if (answer.grpcStatus !== "0" || !answer.message)
    return { ok: false, detail: `HTTP ${answer.httpStatus}, grpc-status ${answer.grpcStatus} ${answer.grpcMessage ?? ""}`, frameBytes: 0 };
  const decoded = fromBinary(ValidateSessionResponseSchema, answer.message);
  if (accountId !== undefined && decoded.accountId !== accountId)
    return { ok: false, detail: `account ${decoded.accountId}, expected ${accountId}`, frameBytes: 0 };
  return { ok: true, detail: `grpc-status 0, account ${decoded.accountId}, tenant ${decoded.tenantId}`, frameBytes: answer.message.length + 5 };
}

// ------------------------------------------------------------- cost as accounts grow

interface ScaleRow {
  operation: string;
  /** Mean ms per call, by number of accounts. */
  ms: Map<number, number>;
}

/** Mean ms of `calls` sequential calls of `task(i)` (one client: the cost of one call, not throughput). */
async function meanMs(calls: number, task: (i: number) => Promise<void>): Promise<number> {
  await task(-1); // warm-up
  const started = performance.now();
  for (let i = 0; i < calls; i++) await task(i);
  return (performance.now() - started) / calls;
}

async function scalePhase(ctx: {
  base: string;
  connections: Connection[];
  owner: Account;
  password: string;
  sessionToken: string;
  kek: { id: string; key: Buffer };
  blindIndexKey: Buffer;
}): Promise<ScaleRow[]> {
  const { base, connections, owner, password } = ctx;
  const sizes = [...new Set([Math.min(SMALL_ACCOUNTS, ACCOUNTS), ACCOUNTS])];
  say();
  say(
    `Cost as accounts grow: ${sizes.map((n) => fmt(n)).join(" then ")} accounts seeded straight into MariaDB (real sealed rows, blind indexes, one data key each), the same calls at each size`,
  );
  // The owner becomes the tenant's admin (directly in the database, as an operator's bootstrap would) and signs in again.
  await connections[0]!.query("UPDATE accounts SET role = 2 WHERE id = ?", [owner.accountId]);
  const admin = {
    authorization: `Bearer ${String(expectOk(await connectCall(base, "identity.v1.SessionService/SignIn", { emailPassword: { email: owner.email, password } }, owner.ip), "admin SignIn").sessionToken)}`,
  };
  const user = { authorization: `Bearer ${ctx.sessionToken}` };
  const seeder = await createSeeder({
    connections,
    tenantId: "default",
    kek: ctx.kek,
    blindIndexKey: ctx.blindIndexKey,
    password,
    runId: RUN_ID,
    startAt: Date.UTC(2026, 0, 1),
  });
  const rows: ScaleRow[] = [
    "SignIn",
    "ValidateSession (Connect)",
    "GetAccount",
    "ListUsers, first page of 50",
    "ListUsers, a page of 50 half-way",
    "ExportUserData",
    "DeleteUser (erasure)",
  ].map((operation) => ({ operation, ms: new Map() }));
  // Each seeded account is used once by SignIn and once by erasure: no rate limit or earlier erasure interferes.
  let used = 0;
  const fresh = () => used++;
  for (const size of sizes) {
    const seconds = await seeder.seedTo(size);
    say(`  seeded ${fmt(seeder.count)} accounts (${fmt(size - (sizes[sizes.indexOf(size) - 1] ?? 0))} in ${seconds.toFixed(1)} s)`);
    const pick = () => {
      const i = fresh();
      if (i >= seeder.count) throw new Error("not enough seeded accounts for the calls");
      return i;
    };
    const first = expectOk(await connectCall(base, "identity.v1.AdminService/ListUsers", { pageSize: 50 }, owner.ip, admin), "ListUsers");
    const middle = Math.floor(seeder.count / 2);
    const deepToken = listUsersTokenAfter(String(first.nextPageToken), { createdAt: Date.UTC(2026, 0, 1) + middle, id: seeder.accountId(middle) });
    const measured = [
      await meanMs(6, async () => {
        const i = pick();
        expectOk(
          await connectCall(base, "identity.v1.SessionService/SignIn", { emailPassword: { email: seeder.email(i), password } }, addressOf(100_000 + i)),
          "seeded SignIn",
        );
      }),
      await meanMs(
        200,
        async () =>
          void expectOk(await connectCall(base, "identity.v1.SessionService/ValidateSession", { sessionToken: ctx.sessionToken }, owner.ip), "ValidateSession"),
      ),
      await meanMs(100, async () => void expectOk(await connectCall(base, "identity.v1.AccountService/GetAccount", {}, owner.ip, user), "GetAccount")),
      await meanMs(
        30,
        async () => void expectOk(await connectCall(base, "identity.v1.AdminService/ListUsers", { pageSize: 50 }, owner.ip, admin), "ListUsers"),
      ),
      await meanMs(30, async () => {
        const page = expectOk(
          await connectCall(base, "identity.v1.AdminService/ListUsers", { pageSize: 50, pageToken: deepToken }, owner.ip, admin),
          "ListUsers deep",
        );
        if (!Array.isArray(page.users) || page.users.length !== 50) throw new Error("the deep page is not a full page");
      }),
      await meanMs(10, async () => {
        const i = pick();
        const answer = await connectStream(
          base,
          "identity.v1.AdminService/ExportUserData",
          { accountId: seeder.accountId(i), reason: "bench" },
          owner.ip,
          admin,
        );
        expectOk(answer, "ExportUserData");
      }),
      await meanMs(
        10,
        async () =>
          void expectOk(
            await connectCall(base, "identity.v1.AdminService/DeleteUser", { accountId: seeder.accountId(pick()), reason: "bench" }, owner.ip, admin),
            "DeleteUser",
          ),
      ),
    ];
    measured.forEach((value, r) => rows[r]!.ms.set(size, value));
    say(`  at ${fmt(size)}: ${rows.map((r) => `${r.operation} ${ms(r.ms.get(size)!)}`).join("; ")}`);
  }
  return rows;
}

// --------------------------------------------------------------------------- main

/** grpc-js: a bare @grpc/grpc-js server; http2: node:http2 alone answering a canned gRPC frame (the floor of Node). */
type BaselineKind = "grpc-js" | "http2";
const BASELINE_LABEL: Record<BaselineKind, string> = { "grpc-js": "bare grpc-js", http2: "node:http2 canned frame" };

interface Report {
  argon2?: Argon2Timing;
  baselines: Array<{ processes: number; kind: BaselineKind } & Measured>;
  service?: Measured;
  serviceWorkers?: number;
  signIn?: SignInResult;
  validator?: ValidatorBench;
  /** The service's CPU over the sign-in load's window. */
  signInCpu?: CpuWindow | undefined;
  scale?: ScaleRow[];
  checks: string[];
}

function printLoad(label: string, measured: Measured) {
  const {
    full: { load, cpu },
    light,
  } = measured;
  say(
    `  ${label}: ${fmt(load.callsPerS)} calls/s, mean ${ms(load.meanMs)}, p50 ${ms(load.p50Ms)}, p99 ${ms(load.p99Ms)}, max ${ms(load.maxMs)} (${fmt(load.calls)} calls in ${LOAD_S} s)`,
  );
  say(`    answers: ${load.check}`);
  if (cpu) {
    const perCall = (cpu.serverCores * 1e6) / load.callsPerS;
    say(
      `    CPU: server ${cpu.serverCores.toFixed(2)} cores [${cpu.perProcess
        .map((s) => s / LOAD_S)
        .filter((c) => c >= 0.005)
        .map((c) => c.toFixed(2))
        .join(
          " + ",
        )}] = ${fmt(perCall)} µs per call; client ${cpu.clientCores.toFixed(2)}; other ${cpu.otherCores.toFixed(2)}; machine ${pct(cpu.machineBusy)} busy`,
    );
  }
  say(
    `    below saturation (${CONNECTIONS}×${LIGHT_STREAMS}, ${LIGHT_S} s): ${fmt(light.callsPerS)} calls/s, p50 ${ms(light.p50Ms)}, p99 ${ms(light.p99Ms)}, max ${ms(light.maxMs)}${light.succeeded < light.calls ? ` — ${light.check}` : ""}`,
  );
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
  let stopped = false;
  const interrupted = () => {
    stopped = true;
    say("interrupted: cleaning up");
    stopLoad();
    void cleanup().then(() => process.exit(130));
  };
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
  say(
    client
      ? `load client: h2load (${CONNECTIONS} connections × ${STREAMS} streams, ${WARM_UP_S} s warm-up + ${LOAD_S} s)`
      : `load client: h2load NOT FOUND (or BENCH_CLIENT=node) — using the node:http2 fallback in this process (${CONNECTIONS} connections × ${STREAMS} streams); its own CPU competes with the servers, so figures are lower than with h2load and not comparable with DESIGN.md's`,
  );
  try {
    // Other work on the machine skews every figure: wait a little for it to calm
    // down, then time argon2 first, before anything of ours runs.
    let idle = await machineBusyOver(1000);
    for (let waited = 0; idle > 0.1 && waited < 20; waited++) idle = await machineBusyOver(1000);
    say(`machine before start: ${pct(idle)} CPU busy${idle > 0.1 ? " — SOMETHING ELSE IS RUNNING: every figure below is skewed" : ""}`);
    if (idle > 0.1) report.checks.push(`the machine was ${pct(idle)} busy before the bench started (other work shares the cores)`);
    report.argon2 = await measureArgon2();
    const argon2Limit = CORES / (report.argon2.oneMs / 1000);
    say(
      `argon2id (m=${ARGON2_PARAMS.memoryCost} KiB, t=${ARGON2_PARAMS.timeCost}, p=${ARGON2_PARAMS.parallelism}): ${ms(report.argon2.oneMs)} per hash alone (mean of 20, ${report.argon2.minMs.toFixed(1)}–${report.argon2.maxMs.toFixed(1)}) → limit ${fmt(argon2Limit, 1)} sign-ins/s on ${CORES} cores`,
    );
    say(
      `  ${CORES} hashes at once (this process): ${fmt(report.argon2.parallelPerS, 1)} hashes/s = ${pct(report.argon2.parallelPerS / argon2Limit)} of that limit — what the cores really give when all of them hash`,
    );

    // Backends.
    const admin = await createConnection({
      host: mysqlUrl.hostname,
      port: Number(mysqlUrl.port || 3306),
      user: decodeURIComponent(mysqlUrl.username || "root"),
      password: decodeURIComponent(mysqlUrl.password),
    });
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
    const kek = { id: "k1", key: randomBytes(32) };
    const blindIndexKey = randomBytes(32);
    const serviceMysql = new URL(mysqlUrl);
    serviceMysql.pathname = `/${database}`;
    const service = startProcess(
      "src/main.ts",
      cleanEnv({
        PORT: String(port),
        HOST: "127.0.0.1",
        MYSQL_URL: serviceMysql.toString(),
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: redisPrefix,
        KEY_ENCRYPTION_KEYS: `${kek.id}:${kek.key.toString("base64")}`,
        BLIND_INDEX_KEY: blindIndexKey.toString("base64"),
        LOG_LEVEL: "warn",
        DATA_DIR: dataDir,
        SMTP_URL: `smtp://127.0.0.1:${inbox.port}`,
        // The bench signs in by password: no phone codes to send.
        SMS_PROVIDER: "none",
        MAIL_FROM: "Identity bench <bench@example.test>",
        PUBLIC_URL: "https://bench.example.test",
        // Load comes from one address; as behind a proxy, each simulated user gets its own.
        TRUSTED_PROXIES: "1",
        ...(process.env.BENCH_WORKERS ? { WORKERS: process.env.BENCH_WORKERS } : {}),
      }),
      { cwd: SERVICE_DIR, nodeFlags: CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF_DIR}`] : [] },
    );
    cleanups.push(() => service.stop());
    const listening = await waitForLine(service, /identity service listening on \S+(?: \((\d+) workers\))?/, 60_000);
    report.serviceWorkers = Number(listening[1] ?? 1);
    const base = `http://127.0.0.1:${port}`;
    for (const deadline = Date.now() + 30_000; ; ) {
      const ready = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline || service.child.exitCode !== null) throw new Error(`service not ready:\n${service.tail.slice(-20).join("\n")}`);
      await sleep(100);
    }
    say(
      `service: node src/main.ts of ${SERVICE_DIR === ROOT ? "this checkout" : SERVICE_DIR} (${commitOf(SERVICE_DIR)}) on ${base}, ${report.serviceWorkers} worker(s), MariaDB ${database}, Redis prefix ${redisPrefix}`,
    );

    // Accounts: one for the validated session, and enough for SignIn at the argon2
    // limit within each account's sign-in budget (tenant default, 15 min window).
    const perAccount = DEFAULT_TENANT_SETTINGS.signInPerAccountLimit;
    const signInAccounts = Math.ceil((Math.max(argon2Limit, report.argon2.parallelPerS) * (LOAD_S + SIGN_IN_WARM_UP_S) * 1.5) / perAccount);
    const password = `Bench-${randomBytes(18).toString("base64url")}`;
    const setupStart = performance.now();
    const accounts = await createAccounts(base, inbox, 1 + REVOCATION_SAMPLES + signInAccounts, password);
    say(`setup: ${accounts.length} accounts signed up and verified through SMTP in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);
    const [owner, ...rest] = accounts as [Account, ...Account[]];
    const revocationSamples = rest.slice(0, REVOCATION_SAMPLES);
    const signInPool = rest.slice(REVOCATION_SAMPLES);
    const signedIn = expectOk(
      await connectCall(base, "identity.v1.SessionService/SignIn", { emailPassword: { email: owner.email, password } }, owner.ip),
      "SignIn",
    );
    const sessionToken = String(signedIn.sessionToken);
    const body = grpcFrame(toBinary(ValidateSessionRequestSchema, create(ValidateSessionRequestSchema, { sessionToken })));
    let keys = 0;
    for (let cursor = "0", first = true; first || cursor !== "0"; first = false) {
      const [next, found] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
      cursor = next;
      keys += found.length;
    }
    if (keys === 0)
      report.checks.push(`the service wrote no Redis key under REDIS_KEY_PREFIX=${redisPrefix}: it ignores the prefix, so its keys are NOT cleaned up`);

    // BENCH_SKIP_VALIDATE=1: SignIn (and --accounts) only, e.g. to profile the sign-in path alone.
    if (!SKIP_VALIDATE) {
      // 1. Baseline.
      say();
      say("ValidateSession over gRPC");
      // The bare server as DESIGN.md measured it (one process), and in the service's
      // shape (one node:cluster worker per core) so the ratio compares like with like.
      // Then node:http2 alone in one process: the floor of Node the service is measured against.
      const baselineShapes: Array<{ kind: BaselineKind; processes: number }> = [
        ...[...new Set([1, report.serviceWorkers])].map((processes) => ({ kind: "grpc-js" as const, processes })),
        { kind: "http2", processes: 1 },
      ];
      for (const { kind, processes } of baselineShapes) {
        const baseline = startProcess(
          "bench/baseline-server.ts",
          cleanEnv({ BASELINE_KIND: kind, BASELINE_WORKERS: String(processes), BASELINE_PORT: String(processes > 1 ? await freePort() : 0) }),
        );
        cleanups.push(() => baseline.stop());
        const baselinePort = Number((await waitForLine(baseline, /^port (\d+)/, 30_000))[1]);
        const baselineUrl = `http://127.0.0.1:${baselinePort}${VALIDATE_PATH}`;
        const baselineCheck = await checkValidate(baselineUrl, body, undefined);
        if (!baselineCheck.ok) throw new Error(`baseline answered ${baselineCheck.detail}`);
        const label = `${BASELINE_LABEL[kind]}, ${processes === 1 ? "1 process" : `${processes} workers`}`;
        const measured = await validateLoad(label, baselineUrl, body, baselineCheck.frameBytes, baseline.child.pid!);
        report.baselines.push({ processes, kind, ...measured });
        printLoad(label, measured);
        await baseline.stop();
      }

      // 2. The service.
      const serviceUrl = `${base}${VALIDATE_PATH}`;
      const before = await checkValidate(serviceUrl, body, owner.accountId);
      if (!before.ok) throw new Error(`service ValidateSession answered ${before.detail}`);
      report.service = await validateLoad(`service, ${report.serviceWorkers} workers`, serviceUrl, body, before.frameBytes, service.child.pid!);
      printLoad(`service (${report.serviceWorkers} workers)`, report.service);
      const after = await checkValidate(serviceUrl, body, owner.accountId);
      say(`  one real call before and after the load: ${before.detail}; after: ${after.ok ? "OK" : after.detail}`);
      if (!after.ok) report.checks.push(`ValidateSession after the load answered ${after.detail}`);

      // 2b. The published session validator, in this process.
      say();
      say("the published session validator (packages/client), in the calling process");
      const apiKey = await createApiKeyWithCli({
        MYSQL_URL: serviceMysql.toString(),
        REDIS_URL: redisUrl,
        REDIS_KEY_PREFIX: redisPrefix,
        KEY_ENCRYPTION_KEYS: `${kek.id}:${kek.key.toString("base64")}`,
        BLIND_INDEX_KEY: blindIndexKey.toString("base64"),
        DATA_DIR: dataDir,
        LOG_LEVEL: "error",
      });
      const v = await benchValidator({
        base,
        apiKey,
        sessionToken,
        samples: revocationSamples.map((a) => a.sessionToken),
        seconds: Math.min(LOAD_S, 5),
        signOut: async (token) =>
          void expectOk(await connectCall(base, "identity.v1.SessionService/SignOut", {}, owner.ip, { authorization: `Bearer ${token}` }), "SignOut"),
      });
      report.validator = v;
      say(`  validate() answered from its cache: ${fmt(v.perS)} calls/s (one caller awaiting each; no network call)`);
      say(
        `  revocation delay, SignOut sent → dropped by both validators (gRPC and Connect streams), ${v.delaysMs.length} sign-outs: median ${ms(median(v.delaysMs))}, p99 ${ms(p99(v.delaysMs))}, max ${ms(Math.max(...v.delaysMs))} (SignOut round trip alone: median ${ms(median(v.signOutMs))})`,
      );
    }

    // 3. SignIn under load.
    say();
    say(
      `SignIn under load (Connect JSON over HTTP/1.1, ${SIGN_IN_CLIENTS} clients, ${SIGN_IN_WARM_UP_S} s warm-up + ${LOAD_S} s; ${signInPool.length} accounts × ≤${perAccount} sign-ins each, one client address per account)`,
    );
    const signInCpu = cpuWindow(service.child.pid!, SIGN_IN_WARM_UP_S * 1000);
    const profileFrom = monotonicUs() + SIGN_IN_WARM_UP_S * 1e6;
    report.signIn = await signInLoad(base, signInPool, password, perAccount);
    const cpu = signInCpu.end();
    report.signInCpu = cpu;
    // The profiles cover the whole run (setup's sign-ups too): profile-top.ts reads this window.
    if (CPU_PROF_DIR) {
      mkdirSync(CPU_PROF_DIR, { recursive: true });
      writeFileSync(join(CPU_PROF_DIR, "window.json"), `${JSON.stringify({ phase: "SignIn under load", fromUs: profileFrom, toUs: monotonicUs() })}\n`);
    }
    const s = report.signIn;
    say(
      `  ${fmt(s.perS, 1)} sign-ins/s (${s.ok} OK in ${s.windowS.toFixed(1)} s), mean ${ms(s.meanMs)}, p99 ${ms(s.p99Ms)}${s.ranOut ? " — stopped early: the accounts' sign-in budget ran out" : ""}`,
    );
    if (s.errors.size > 0) say(`  errors: ${[...s.errors].map(([k, v]) => `${v}× ${k}`).join(", ")}`);
    if (cpu)
      say(
        `    CPU: server ${cpu.serverCores.toFixed(2)} cores [${cpu.perProcess
          .map((c) => c / s.windowS)
          .filter((c) => c >= 0.005)
          .map((c) => c.toFixed(2))
          .join(
            " + ",
          )}] = ${ms((cpu.serverCores * 1000) / s.perS)} per sign-in (one hash alone: ${ms(report.argon2.oneMs)}; main threads ${ms((cpu.serverMainThreadCores * 1000) / s.perS)}, other threads ${ms(((cpu.serverCores - cpu.serverMainThreadCores) * 1000) / s.perS)}); client ${cpu.clientCores.toFixed(2)}; other (MariaDB, Redis, …) ${cpu.otherCores.toFixed(2)}; machine ${pct(cpu.machineBusy)} busy`,
      );
    if (cpu) noteForeign("SignIn", cpu.otherCores - 0.15);

    // 4. Cost as the accounts grow.
    if (ACCOUNTS > 0) {
      const connections = await Promise.all(
        [0, 1, 2].map(() =>
          createConnection({
            host: mysqlUrl.hostname,
            port: Number(mysqlUrl.port || 3306),
            user: decodeURIComponent(mysqlUrl.username || "root"),
            password: decodeURIComponent(mysqlUrl.password),
            database,
          }),
        ),
      );
      cleanups.push(async () => void (await Promise.all(connections.map((c) => c.end()))));
      report.scale = await scalePhase({ base, connections, owner, password, sessionToken, kek, blindIndexKey });
    }

    // Service log.
    const logged = [...service.logged].sort((a, b) => b[1].count - a[1].count);
    say();
    say(logged.length === 0 ? "service log: no warnings or errors" : `service log (warn and above):`);
    for (const [message, { level, count }] of logged.slice(0, 8)) say(`  ${count}× ${level}: ${message}`);

    // Summary.
    const signInRatio = s.perS / argon2Limit;
    const verdict = (ok: boolean) => (ok ? "PASS" : "SHORT");
    const measured = report.service;
    const shape = (processes: number) => (processes === 1 ? "1 process" : `${processes} workers`);
    const perCall = (m: Measured) => (m.full.cpu ? (m.full.cpu.serverCores * 1e6) / m.full.load.callsPerS : NaN);
    const validateRows = (measured: Measured): string[][] => [
      ["ValidateSession over gRPC", "calls/s", `p99 ${CONNECTIONS}×${STREAMS}`, `p99 ${CONNECTIONS}×${LIGHT_STREAMS}`, "CPU/call", ""],
      ...[
        ...report.baselines.map((b) => ({ label: `${BASELINE_LABEL[b.kind]}, ${shape(b.processes)}`, m: b as Measured })),
        { label: `service, ${shape(report.serviceWorkers ?? 1)}`, m: measured },
      ].map(({ label, m }) => [`  ${label}`, fmt(m.full.load.callsPerS), ms(m.full.load.p99Ms), ms(m.light.p99Ms), `${fmt(perCall(m))} µs`, ""]),
      ["goal", "figure", "reference", "ratio", "goal", ""],
      ...report.baselines.map((b) => {
        const ratio = measured.full.load.callsPerS / b.full.load.callsPerS;
        const goal = b.kind === "http2" ? 0.9 : 0.8;
        return [
          `  throughput ÷ ${BASELINE_LABEL[b.kind]}, ${shape(b.processes)}`,
          `${fmt(measured.full.load.callsPerS)}/s`,
          `${fmt(b.full.load.callsPerS)}/s`,
          pct(ratio),
          `≥ ${goal * 100} %`,
          verdict(ratio >= goal),
        ];
      }),
      ...report.baselines.map((b) => [
        `  calls per server CPU-second ÷ ${BASELINE_LABEL[b.kind]}, ${shape(b.processes)}`,
        fmt(1e6 / perCall(measured)),
        fmt(1e6 / perCall(b)),
        pct(perCall(b) / perCall(measured)),
        "",
        "",
      ]),
      [`  p99 at ${CONNECTIONS}×${STREAMS} (saturated)`, ms(measured.full.load.p99Ms), "", "", "< 5 ms", verdict(measured.full.load.p99Ms < 5)],
      [`  p99 at ${CONNECTIONS}×${LIGHT_STREAMS} (below saturation)`, ms(measured.light.p99Ms), "", "", "< 5 ms", verdict(measured.light.p99Ms < 5)],
      ...(report.validator
        ? [
            [
              "  session validator in-process ÷ ValidateSession over gRPC",
              `${fmt(report.validator.perS)}/s`,
              `${fmt(measured.full.load.callsPerS)}/s`,
              `${(report.validator.perS / measured.full.load.callsPerS).toFixed(0)}×`,
              "",
              "",
            ],
            [
              "  revocation delay to 2 validators, median / p99",
              ms(median(report.validator.delaysMs)),
              ms(p99(report.validator.delaysMs)),
              "",
              "p99 < 1 s",
              verdict(p99(report.validator.delaysMs) < 1000),
            ],
          ]
        : []),
    ];
    const rows: string[][] = [
      ...(measured ? validateRows(measured) : [["goal", "figure", "reference", "ratio", "goal", ""]]),
      [
        "  SignIn ÷ argon2 limit (cores ÷ one hash)",
        `${fmt(s.perS, 1)}/s`,
        `${fmt(argon2Limit, 1)}/s`,
        pct(signInRatio),
        "≥ 90 %",
        verdict(signInRatio >= 0.9),
      ],
      [
        `  SignIn ÷ ${CORES} hashes at once (measured)`,
        `${fmt(s.perS, 1)}/s`,
        `${fmt(report.argon2.parallelPerS, 1)}/s`,
        pct(s.perS / report.argon2.parallelPerS),
        "",
        "",
      ],
      // The figure least moved by other work on the machine: what one sign-in costs the service.
      ...(report.signInCpu
        ? [
            [
              "  SignIn per server CPU-second",
              fmt(s.perS / report.signInCpu.serverCores, 1),
              `${ms((report.signInCpu.serverCores * 1000) / s.perS)} per sign-in`,
              `one hash ${ms(report.argon2.oneMs)}`,
              "",
              "",
            ],
            ["    of which on main threads (argon2 runs on others)", ms((report.signInCpu.serverMainThreadCores * 1000) / s.perS), "", "", "", ""],
          ]
        : []),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    say();
    say(`summary (${client ?? "node:http2 fallback client"}, ${CONNECTIONS}×${STREAMS} streams; ${CORES} cores shared by servers, client, MariaDB and Redis)`);
    for (const row of rows)
      say(
        `  ${row
          .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
          .join("  ")
          .trimEnd()}`,
      );
    if (report.scale) {
      const sizes = [...new Set(report.scale.flatMap((r) => [...r.ms.keys()]))];
      const big = sizes[sizes.length - 1]!;
      const scaleRows = [
        ["cost as accounts grow (mean per call, one client)", ...sizes.map((n) => `${fmt(n)} accounts`), "ratio", "goal", ""],
        ...report.scale.map((r) => {
          const ratio = (r.ms.get(big) ?? NaN) / (r.ms.get(sizes[0]!) ?? NaN);
          return [
            `  ${r.operation}`,
            ...sizes.map((n) => ms(r.ms.get(n) ?? NaN)),
            sizes.length > 1 ? `${ratio.toFixed(2)}×` : "",
            "≤ 1.10×",
            sizes.length > 1 ? verdict(ratio <= 1.1) : "",
          ];
        }),
      ];
      const scaleWidths = scaleRows[0]!.map((_, c) => Math.max(...scaleRows.map((r) => r[c]!.length)));
      say();
      for (const row of scaleRows)
        say(
          `  ${row
            .map((cell, c) => (c === 0 ? cell.padEnd(scaleWidths[c]!) : cell.padStart(scaleWidths[c]!)))
            .join("  ")
            .trimEnd()}`,
        );
    }
    for (const check of report.checks) say(`  ! ${check}`);
    for (const line of foreignLoad) say(`  ! skewed — ${line}`);
  } catch (error) {
    failed = true;
    if (!stopped) say(`bench failed: ${(error as Error).stack ?? error}`);
  } finally {
    await cleanup();
    say(`total ${((performance.now() - wallStart) / 1000).toFixed(0)} s`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
