// Backends that drop packets (a proxy we control stalls: it accepts and forwards
// nothing) must not hang calls or probes: every call fails in bounded time with
// Unavailable and a retry hint, /readyz and gRPC health answer within a second,
// and the service is ready again on its own once the backend answers.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS, MYSQL_ADMIN_URL, REDIS_URL } from "../support/backends.ts";
import { createCaller, PROTOCOLS } from "../support/clients.ts";
import { startTcpProxy, type TcpProxy } from "../support/proxy.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const TIMEOUTS = { MYSQL_CONNECT_TIMEOUT_MS: "500", MYSQL_QUERY_TIMEOUT_MS: "1000", REDIS_CONNECT_TIMEOUT_MS: "500", REDIS_COMMAND_TIMEOUT_MS: "500" };
/** The longest a failing call may take: a query bound, a connect bound and room for a loaded machine. */
const CALL_BOUND_MS = 4000;

const hostPort = (url: string) => {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || (parsed.protocol.startsWith("redis") ? 6379 : 3306)) };
};

/** Resolves with how long `work` took, and its error (if any). */
async function timed(work: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = Date.now();
  try {
    await work();
    return { ms: Date.now() - started, error: undefined };
  } catch (error) {
    return { ms: Date.now() - started, error };
  }
}

async function eventually(condition: () => Promise<boolean>, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not true within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!BACKENDS.includes("mysql"))("a backend that drops packets", () => {
  let mysqlProxy: TcpProxy;
  let redisProxy: TcpProxy;
  let server: TestServer;
  const signIn = () =>
    createCaller("connect-json-h1", server.baseUrl).call(SessionService.method.signIn, {
      method: { case: "emailPassword", value: { email: "nobody@example.test", password: "not the password at all" } },
    });
  const readyz = () => fetch(`${server.baseUrl}/readyz`).then((r) => r.status);
  const health = () =>
    createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }))
      .check({ service: "" })
      .then((r) => r.status);

  beforeAll(async () => {
    mysqlProxy = await startTcpProxy(hostPort(MYSQL_ADMIN_URL));
    redisProxy = await startTcpProxy(hostPort(REDIS_URL));
    server = await startTestServer("mysql", { env: TIMEOUTS, via: { mysql: mysqlProxy, redis: redisProxy } });
    expect(await readyz()).toBe(200);
  });

  afterEach(async () => {
    mysqlProxy.mode("forward");
    redisProxy.mode("forward");
    await eventually(async () => (await readyz()) === 200, 10_000);
  });

  afterAll(async () => {
    await server?.close();
    await mysqlProxy?.close();
    await redisProxy?.close();
  });

  for (const backend of ["redis", "mysql"] as const) {
    describe(backend, () => {
      const proxy = () => (backend === "redis" ? redisProxy : mysqlProxy);

      it("fails a call that needs it with Unavailable and a retry hint, in bounded time, on every protocol", async () => {
        await signIn().catch(() => {}); // connections open and in use before the stall
        proxy().mode("stall");
        for (const protocol of PROTOCOLS) {
          const caller = createCaller(protocol, server.baseUrl);
          const { ms, error } = await timed(() =>
            caller.call(SessionService.method.signIn, {
              method: { case: "emailPassword", value: { email: `someone-${protocol}@example.test`, password: "not the password at all" } },
            }),
          );
          caller.close();
          expect(ms, protocol).toBeLessThan(CALL_BOUND_MS);
          expect(error, protocol).toBeInstanceOf(ConnectError);
          expect((error as ConnectError).code, protocol).toBe(Code.Unavailable);
          if (protocol !== "grpc-js") {
            // grpc-js hands trailers to the caller as metadata, not as decoded details.
            const retry = (error as ConnectError).findDetails(RetryInfoSchema)[0];
            expect(Number(retry?.retryDelay?.seconds ?? 0n), protocol).toBeGreaterThan(0);
          }
        }
      });

      it("makes /readyz and gRPC health answer not ready within a second, and ready again once it answers", async () => {
        proxy().mode("stall");
        const probe = await timed(readyz);
        expect(probe.ms).toBeLessThan(1000);
        let status: number | undefined;
        await eventually(async () => (status = await readyz()) === 503, 3000);
        expect(status).toBe(503);
        const check = await timed(async () => expect(await health()).toBe(Status.NOT_SERVING));
        expect(check.error).toBeUndefined();
        expect(check.ms).toBeLessThan(1000);

        proxy().mode("forward");
        await eventually(async () => (await readyz()) === 200, 10_000);
        expect(await health()).toBe(Status.SERVING);
      });
    });
  }
});
