// Start-up on a Redis Cluster as an operator sees it (node src/main.ts as a
// child process): with REDIS_CLUSTER_NODES naming a seed that refuses, the
// port opens, not ready, calls answer Unavailable, one line names the variable,
// and the service becomes ready on its own once the seed answers (the rest of
// the cluster is discovered through it).
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS, createMysqlDatabase, redisPrefix } from "../support/backends.ts";
import { createCaller } from "../support/clients.ts";
import { base64Key, ready, request, startMain, waitFor, type MainProcess } from "../support/main-process.ts";
import { startTcpProxy, type TcpProxy } from "../support/proxy.ts";
import { CLUSTER_AVAILABLE, startRedisCluster, type RedisCluster } from "../support/redis-cluster.ts";

const count = (text: string, pattern: RegExp) => text.split("\n").filter((line) => pattern.test(line)).length;

describe.skipIf(!CLUSTER_AVAILABLE || !BACKENDS.includes("mysql"))("start-up on a Redis Cluster", () => {
  let cluster: RedisCluster;
  let database: { url: string; drop: () => Promise<void> };
  let proxy: TcpProxy;
  let service: MainProcess | undefined;

  beforeAll(async () => {
    [cluster, database] = await Promise.all([startRedisCluster(), createMysqlDatabase()]);
    proxy = await startTcpProxy(cluster.nodes[0]!, "refuse");
  });
  afterAll(async () => {
    await service?.stop();
    await proxy?.close();
    await Promise.all([cluster?.stop(), database?.drop()]);
  });

  it("cluster unreachable: the port opens, not ready, Unavailable, one line naming REDIS_CLUSTER_NODES; ready on its own when it answers", async () => {
    service = startMain({
      MYSQL_URL: database.url,
      REDIS_CLUSTER_NODES: `127.0.0.1:${proxy.port}`,
      REDIS_KEY_PREFIX: redisPrefix(),
      KEY_ENCRYPTION_KEYS: base64Key(),
      BLIND_INDEX_KEY: base64Key(),
      SMTP_URL: "smtp://127.0.0.1:9",
      SMS_PROVIDER: "none",
      WORKERS: "1",
    });
    const port = await service.listening(30_000);
    const started = Date.now();
    expect((await request(port, "GET", "/readyz")).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1000);
    const caller = createCaller("connect-json-h1", `http://127.0.0.1:${port}`);
    const signIn = () =>
      caller
        .call(SessionService.method.signIn, {
          method: { case: "emailPassword", value: { email: "someone@example.test", password: "not the password at all" } },
        })
        .catch((e: unknown) => ConnectError.from(e).code);
    try {
      const refusedAt = Date.now();
      expect(await signIn()).toBe(Code.Unavailable);
      expect(Date.now() - refusedAt).toBeLessThan(2000);
      await new Promise((r) => setTimeout(r, 2000)); // readiness checks every second
      expect(count(service.output(), /redis \(REDIS_CLUSTER_NODES\) does not answer/)).toBe(1);
      expect(service.output()).not.toContain("Unhandled error event");

      proxy.mode("forward");
      await ready(port, 20_000);
      await waitFor("the line saying Redis answers again", () => count(service!.output(), /redis \(REDIS_CLUSTER_NODES\) answers again/) === 1, 5000);
      expect(await signIn()).toBe(Code.Unauthenticated); // counted on the cluster, then refused: no such account
      expect(service.child.exitCode).toBeNull();
    } finally {
      caller.close();
    }
  });
});
