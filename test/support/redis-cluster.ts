// A real Redis Cluster of three masters for one test file: redis-server
// processes of our own on free loopback ports (never the shared Redis on
// 6379), formed with `redis-cli --cluster create`, stopped after. Like MySQL
// and Redis, it is mandatory in CI (CI=true): a missing redis-server fails
// the run; elsewhere the cluster suites are skipped with one line.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { IN_CI } from "./backends.ts";
import { freePort } from "./main-process.ts";

const run = promisify(execFile);

async function installed(command: string): Promise<boolean> {
  try {
    await run(command, ["--version"]);
    return true;
  } catch {
    return false;
  }
}

/** redis-server and redis-cli are both on PATH. */
export const CLUSTER_AVAILABLE = (await installed("redis-server")) && (await installed("redis-cli"));
if (!CLUSTER_AVAILABLE) {
  if (IN_CI) throw new Error("redis-server/redis-cli not found: the Redis Cluster suites are mandatory in CI (CI=true)");
  process.stderr.write("redis-server/redis-cli not found: the Redis Cluster suites are skipped (they are mandatory when CI=true)\n");
}

export interface ClusterNode {
  host: string;
  port: number;
}

export interface RedisCluster {
  nodes: ClusterNode[];
  /** The value of REDIS_CLUSTER_NODES for this cluster (every master). */
  env: string;
  /** A plain connection to one node (not cluster-aware): for looking at what a node holds. */
  connect(node: ClusterNode): Redis;
  stop(): Promise<void>;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function answers(node: ClusterNode, command: (redis: Redis) => Promise<boolean>): Promise<boolean> {
  const redis = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await command(redis);
  } finally {
    redis.disconnect();
  }
}

/** Starts three masters on free loopback ports and forms a cluster of them; resolves once every node says cluster_state:ok. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "identity-redis-cluster-"));
  const processes: ChildProcess[] = [];
  const stopAll = () => {
    for (const child of processes) if (child.exitCode === null) child.kill("SIGKILL");
  };
  // A test run that dies must not leave servers behind.
  process.once("exit", stopAll);
  try {
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < 3; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      const child = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--cluster-port",
          String(busPort),
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          "5000",
          "--dir",
          dir,
          "--save",
          "",
          "--appendonly",
          "no",
          "--logfile",
          join(dir, `redis-${port}.log`),
          "--daemonize",
          "no",
        ],
        { stdio: "ignore" },
      );
      processes.push(child);
      nodes.push({ host: "127.0.0.1", port });
    }
    for (const node of nodes) await until(`${node.port} answers PING`, () => answers(node, async (r) => (await r.ping()) === "PONG"), 10_000);
    await run("redis-cli", ["--cluster", "create", ...nodes.map((n) => `${n.host}:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"], {
      timeout: 30_000,
    });
    for (const node of nodes) {
      await until(`${node.port} reports cluster_state:ok`, () => answers(node, async (r) => (await r.cluster("INFO")).includes("cluster_state:ok")), 20_000);
    }
    return {
      nodes,
      env: nodes.map((n) => `${n.host}:${n.port}`).join(","),
      connect(node) {
        const redis = new Redis({ ...node, maxRetriesPerRequest: 1 });
        redis.on("error", () => {});
        return redis;
      },
      async stop() {
        process.off("exit", stopAll);
        await Promise.all(
          processes.map(
            (child) =>
              new Promise<void>((resolve) => {
                if (child.exitCode !== null) return resolve();
                child.once("exit", () => resolve());
                child.kill("SIGTERM");
              }),
          ),
        );
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    stopAll();
    process.off("exit", stopAll);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
