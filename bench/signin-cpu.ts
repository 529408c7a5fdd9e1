// What one sign-in costs the service's JavaScript thread, measured without the
// noise of a shared machine's wall clock: the service (createRuntime + the HTTP
// server, real MariaDB and Redis, real argon2) runs on this process's main
// thread, a client in a worker thread signs seeded accounts in over Connect JSON,
// and the main thread's own CPU time (process.threadCpuUsage: argon2 runs on the
// libuv threadpool, the client on its worker, neither is counted) is divided by
// the sign-ins. `npm run bench` measures the whole server's CPU under load; this
// isolates the part the service's own code decides.
//   npx node bench/signin-cpu.ts [sign-ins, default 600] [at once, default 4]
// Environment: BENCH_MYSQL_URL, BENCH_REDIS_URL (as `npm run bench`); BENCH_CPU_PROF=dir
// also writes a CPU profile of the main thread over the measured sign-ins there
// (`npx node bench/profile-top.ts dir`).
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Redis } from "ioredis";
import { createConnection } from "mysql2/promise";
import { createSeeder } from "./accounts.ts";

/** CPU seconds of each thread of this process, by thread id, with its name (MainThread, libuv-worker, V8Worker, WorkerThread). */
function threadCpu(): Map<string, { comm: string; seconds: number }> {
  const result = new Map<string, { comm: string; seconds: number }>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      result.set(tid, { comm, seconds: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // exited
    }
  }
  return result;
}

interface ClientJob {
  base: string;
  emails: string[];
  password: string;
  warmUp: number;
  measured: number;
  concurrency: number;
}

if (!isMainThread) {
  // The client: warm-up sign-ins, a "start" message, the measured ones, "done".
  const job = workerData as ClientJob;
  let next = 0;
  const signIn = async (i: number) => {
    const email = job.emails[i % job.emails.length]!;
    const response = await fetch(`${job.base}/identity.v1.SessionService/SignIn`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", "x-forwarded-for": `10.${(i % job.emails.length) >> 8}.${i % 256}.9` },
      body: JSON.stringify({ emailPassword: { email, password: job.password } }),
    });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`SignIn answered ${response.status}: ${body}`);
  };
  const run = async (count: number) => {
    const end = next + count;
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (next < end) await signIn(next++);
      }),
    );
  };
  await run(job.warmUp);
  parentPort!.postMessage("start");
  await new Promise((resolve) => parentPort!.once("message", resolve));
  await run(job.measured);
  parentPort!.postMessage("done");
} else {
  const measured = Number(process.argv[2] ?? 600);
  const concurrency = Number(process.argv[3] ?? 4);
  process.env.UV_THREADPOOL_SIZE ??= "4";
  const { loadConfig } = await import("../src/config.ts");
  const { createRuntime } = await import("../src/server/wiring.ts");
  const { createHttpServer } = await import("../src/server/http.ts");
  const { createMetrics } = await import("../src/interceptors/metrics.ts");
  const { createLogger } = await import("../src/server/logger.ts");
  const { DEFAULT_TENANT_ID } = await import("../src/domain/tenants.ts");

  const mysqlUrl = new URL(process.env.BENCH_MYSQL_URL || "mysql://root@127.0.0.1:3306");
  const runId = randomBytes(4).toString("hex");
  const redisUrl = process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379";
  const redisPrefix = `identity-signin-cpu-${runId}:`;
  const database = `identity_signin_cpu_${runId}`;
  const admin = await createConnection({ uri: mysqlUrl.toString() });
  await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const serviceUrl = new URL(mysqlUrl);
  serviceUrl.pathname = `/${database}`;
  const kek = { id: "k1", key: randomBytes(32) };
  const blindIndexKey = randomBytes(32);
  const dataDir = mkdtempSync(join(tmpdir(), "identity-signin-cpu-"));
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    MYSQL_URL: serviceUrl.toString(),
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: redisPrefix,
    KEY_ENCRYPTION_KEYS: `${kek.id}:${kek.key.toString("base64")}`,
    BLIND_INDEX_KEY: blindIndexKey.toString("base64"),
    PUBLIC_URL: "https://bench.example.test",
    TRUSTED_PROXIES: "1",
    DEVELOPMENT_MODE: "true", // no SMTP: nothing is sent here
    WORKERS: "1",
  });
  const log = createLogger(config.logLevel);
  // BENCH_CHEAP_HASHER=1: an HMAC in place of argon2 (the fast test tier's): the rest of
  // the path alone, without argon2's memory sweeps evicting it from the caches.
  const cheap = process.env.BENCH_CHEAP_HASHER === "1" ? (await import("../test/service/harness.ts")).cheapPasswordHasher() : undefined;
  const runtime = await createRuntime(config, log, { deliver: false, purgeIntervalMs: 0, revocationIntervalMs: 0, ...(cheap ? { passwords: cheap } : {}) });
  const server = createHttpServer({ config, runtime, log, metrics: createMetrics() });
  const port = await server.listen();
  try {
    const password = `Bench-${randomBytes(18).toString("base64url")}`;
    const connection = await createConnection({ uri: serviceUrl.toString() });
    const seeder = await createSeeder({
      connections: [connection],
      tenantId: DEFAULT_TENANT_ID,
      kek,
      blindIndexKey,
      password,
      runId,
      startAt: Date.now(),
      ...(cheap ? { passwordHash: await cheap.hash(password) } : {}),
    });
    const accounts = 200;
    await seeder.seedTo(accounts);
    await connection.end();
    const warmUp = Math.max(100, Math.round(measured / 4));
    const client = new Worker(new URL(import.meta.url), {
      workerData: {
        base: `http://127.0.0.1:${port}`,
        emails: Array.from({ length: accounts }, (_, i) => seeder.email(i)),
        password,
        warmUp,
        measured,
        concurrency,
      } satisfies ClientJob,
    });
    const failed = new Promise<never>((_, reject) => client.once("error", reject));
    const message = (text: string) => Promise.race([failed, new Promise<void>((resolve) => client.on("message", (m) => m === text && resolve()))]);
    await message("start");
    const profiler = process.env.BENCH_CPU_PROF ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.start");
    }
    const threadsBefore = threadCpu();
    const cpuBefore = process.threadCpuUsage();
    const wallBefore = performance.now();
    client.postMessage("go");
    await message("done");
    const cpu = process.threadCpuUsage(cpuBefore);
    const threads = threadCpu();
    const byKind = new Map<string, number>();
    for (const [tid, { comm, seconds }] of threads) byKind.set(comm, (byKind.get(comm) ?? 0) + seconds - (threadsBefore.get(tid)?.seconds ?? 0));
    const wallS = (performance.now() - wallBefore) / 1000;
    if (profiler) {
      const { profile } = await profiler.post("Profiler.stop");
      mkdirSync(process.env.BENCH_CPU_PROF!, { recursive: true });
      const file = join(process.env.BENCH_CPU_PROF!, `signin-cpu-${runId}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      profiler.disconnect();
      process.stdout.write(`profile of the measured sign-ins (main thread): ${file}\n`);
    }
    await client.terminate();
    const perSignInMs = (cpu.user + cpu.system) / 1000 / measured;
    process.stdout.write(
      `  threads (ms per sign-in): ${[...byKind]
        .filter(([comm]) => comm !== "WorkerThread") // the client
        .map(([comm, seconds]) => `${comm} ${((seconds * 1000) / measured).toFixed(2)}`)
        .join(", ")}\n`,
    );
    process.stdout.write(
      `${measured} sign-ins (after ${warmUp} to warm up), ${concurrency} at once, in ${wallS.toFixed(1)} s: main-thread CPU ${perSignInMs.toFixed(3)} ms per sign-in (user ${(cpu.user / 1000 / measured).toFixed(3)}, system ${(cpu.system / 1000 / measured).toFixed(3)})\n`,
    );
  } finally {
    await server.close(1000);
    await runtime.close();
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
    // The sessions and counters this run left in the shared Redis, by its prefix only.
    const redis = new Redis(redisUrl);
    for (let cursor = "0", first = true; first || cursor !== "0"; first = false) {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  }
}
