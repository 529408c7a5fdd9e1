// The one port, from the outside: server reflection and health for buf curl,
// Unimplemented for methods the server lacks, /healthz /readyz /metrics over HTTP/1.1
// and h2c, CORS preflights, TLS with ALPN (gRPC, Connect on HTTP/1.1 and
// HTTP/2), graceful shutdown with calls in flight, and the gRPC fast path for
// ValidateSession answering exactly like the connect-node handler.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent as HttpAgent, get as httpGet } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { create, equals, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService, ValidateSessionResponseSchema } from "../../gen/identity/v1/session_service_pb.js";
import { createHttpServer, SERVED_FILES } from "../../src/server/http.ts";
import { createLogger } from "../../src/server/logger.ts";
import { createMetrics } from "../../src/interceptors/metrics.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, refusal } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { selfSignedCertificate } from "../support/tls.ts";

const exec = promisify(execFile);
const BUF = join(import.meta.dirname, "../../node_modules/.bin/buf");
const PASSWORD = "correct horse battery staple";
const APP_ORIGIN = "https://app.example.test";
let seq = 0;
const uniqueEmail = (tag: string) => `transport.${tag}.${Date.now()}.${seq++}@example.test`;
const GRACE_MS = 10_000;
const BOGUS_TOKEN = `${"0".repeat(8)}-0000-7000-8000-${"0".repeat(12)}.${"A".repeat(43)}`;

const scratch = mkdtempSync(join(tmpdir(), "transport-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function call<I extends DescMessage, O extends DescMessage>(
  transport: Transport,
  method: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  const client = createClient(method.parent, transport) as unknown as Record<string, (i: unknown) => Promise<MessageShape<O>>>;
  return client[method.localName]!(input);
}

/** One grpc-js unary call on a given client (TLS or not); rejects with the grpc-js ServiceError. */
function grpcJsCall<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/${method.parent.typeName}/${method.name}`,
      (message: MessageInitShape<I>) => Buffer.from(toBinary(method.input, create(method.input, message))),
      (bytes: Buffer) => fromBinary(method.output, bytes),
      input,
      (error, response) => (error ? reject(error) : resolve(response!)),
    );
  });
}

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await exec(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    env: { ...process.env, BUF_CACHE_DIR: join(scratch, "buf-cache") },
    timeout: 20_000,
  });
  return stdout;
}

/** A verified account and a live session token, made through the public API. */
async function signedUp(server: TestServer, transport: Transport): Promise<{ email: string; sessionToken: string; accountId: string }> {
  const email = uniqueEmail("session");
  await call(transport, IdentityService.method.signUp, { email, password: PASSWORD });
  const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
  const verified = await call(transport, IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
  return { email, sessionToken: verified.sessionToken, accountId: verified.accountId };
}

describe.each(BACKENDS)("transport on the %s backend", (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { CORS_ORIGINS: APP_ORIGIN } });
  });
  afterAll(async () => {
    await server?.close();
  });

  describe("reflection and health with buf curl", () => {
    it("lists every method of the four identity.v1 services", async () => {
      const listed = (await bufCurl("--list-methods", server.baseUrl)).split("\n").filter(Boolean);
      const expected = SERVED_FILES.flatMap((f) => f.services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`)));
      expect(new Set(expected.map((m) => m.split("/")[0]))).toEqual(
        new Set(["identity.v1.IdentityService", "identity.v1.SessionService", "identity.v1.AccountService", "identity.v1.AdminService"]),
      );
      expect(expected.length).toBeGreaterThan(40);
      expect(listed).toEqual(expect.arrayContaining(expected));
      for (const sample of [
        "identity.v1.AdminService/GetUser",
        "identity.v1.AccountService/GetAccount",
        "identity.v1.IdentityService/SignUp",
        "identity.v1.SessionService/ValidateSession",
      ]) {
        expect(listed).toContain(sample);
      }
    });

    it("reports SERVING from grpc.health.v1.Health/Check", async () => {
      expect(JSON.parse(await bufCurl("-d", "{}", `${server.baseUrl}/grpc.health.v1.Health/Check`))).toEqual({ status: "SERVING" });
    });
  });

  it.each(PROTOCOLS)("answers a method the server does not have (a newer client) with Unimplemented over %s", async (protocol) => {
    const api = createCaller(protocol, server.baseUrl);
    try {
      expect(await codeOf(api.call(unknownMethod(), {}))).toBe(Code.Unimplemented);
    } finally {
      api.close();
    }
  });

  describe("plain HTTP endpoints", () => {
    it("serves /healthz, /readyz and /metrics over HTTP/1.1", async () => {
      const health = await fetch(`${server.baseUrl}/healthz`);
      expect(health.status).toBe(200);
      expect((await health.text()).trim()).toBe("ok");
      expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);
      const scrape = async () => {
        const metrics = await fetch(`${server.baseUrl}/metrics`);
        expect(metrics.status).toBe(200);
        return metrics.text();
      };
      const counted = (body: string) =>
        Number(
          body
            .split("\n")
            .find((l) => l.startsWith('identity_rpc_calls_total{procedure="identity.v1.AdminService/GetUser",code="16"}'))
            ?.split(" ")
            .pop() ?? 0,
        );
      const before = await scrape();
      expect(before).toContain("identity_rpc_calls_total");
      expect(before).toContain("identity_rpc_duration_seconds");
      expect(before).toContain("process_cpu_seconds_total");
      await refusal(call(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }), AdminService.method.getUser, {}));
      expect(counted(await scrape())).toBe(counted(before) + 1);
    });

    it("serves /healthz over h2c on the same port", async () => {
      const session = http2.connect(server.baseUrl);
      try {
        const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const stream = session.request({ ":method": "GET", ":path": "/healthz" });
          let status = 0;
          let text = "";
          stream.on("response", (headers) => (status = Number(headers[":status"])));
          stream.setEncoding("utf8");
          stream.on("data", (chunk: string) => (text += chunk));
          stream.on("end", () => resolve({ status, text }));
          stream.on("error", reject);
          stream.end();
        });
        expect(status).toBe(200);
        expect(text.trim()).toBe("ok");
      } finally {
        session.close();
      }
    });
  });

  describe("CORS", () => {
    const preflight = (origin: string) =>
      fetch(`${server.baseUrl}/identity.v1.SessionService/SignIn`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,authorization,x-tenant-id,connect-protocol-version",
        },
      });

    it("answers a preflight from a configured origin", async () => {
      const res = await preflight(APP_ORIGIN);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
      expect(res.headers.get("vary")).toMatch(/origin/i);
      expect(res.headers.get("access-control-allow-methods")).toMatch(/POST/);
      const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/,\s*/);
      expect(allowed).toEqual(expect.arrayContaining(["authorization", "x-tenant-id", "content-type", "connect-protocol-version"]));
    });

    it("gives no allow-origin to another origin", async () => {
      const res = await preflight("https://evil.example.test");
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-headers")).toBeNull();
    });

    it("exposes Retry-After and the Connect headers on a cross-origin call", async () => {
      const res = await fetch(`${server.baseUrl}/identity.v1.SessionService/ValidateSession`, {
        method: "POST",
        headers: { origin: APP_ORIGIN, "content-type": "application/json" },
        body: JSON.stringify({ sessionToken: BOGUS_TOKEN }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
      const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/,\s*/);
      expect(exposed).toEqual(expect.arrayContaining(["retry-after", "grpc-status", "grpc-message", "grpc-status-details-bin"]));
    });
  });

  describe("the gRPC fast path for ValidateSession", () => {
    let live: { sessionToken: string; accountId: string };
    let fastPathCalls = 0;
    let grpcJs: grpc.Client;
    const transports = () => ({
      connect: createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
      // Uncompressed gRPC takes the fast path; a compressed request falls through to connect-node.
      grpcFast: createGrpcTransport({ baseUrl: server.baseUrl }),
      grpcSlow: createGrpcTransport({ baseUrl: server.baseUrl, sendCompression: compressionGzip }),
    });

    beforeAll(async () => {
      live = await signedUp(server, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
      // Count the calls the fast path answers: only it records through metrics.observe
      // (connect-node's calls are recorded inside the metrics interceptor).
      const metrics = server.metrics;
      const observe = metrics.observe.bind(metrics);
      metrics.observe = (...args) => {
        fastPathCalls++;
        observe(...args);
      };
      grpcJs = new grpc.Client(new URL(server.baseUrl).host, grpc.credentials.createInsecure());
    });
    afterAll(() => grpcJs?.close());

    it("answers a live session with the same fields on both paths", async () => {
      const { connect, grpcFast, grpcSlow } = transports();
      const before = fastPathCalls;
      const fromGrpcJs = await grpcJsCall(grpcJs, SessionService.method.validateSession, { sessionToken: live.sessionToken }); // not cached yet
      const fromGrpcJsCached = await grpcJsCall(grpcJs, SessionService.method.validateSession, { sessionToken: live.sessionToken });
      const fromGrpcFast = await call(grpcFast, SessionService.method.validateSession, { sessionToken: live.sessionToken });
      expect(fastPathCalls - before).toBe(3);
      const fromConnect = await call(connect, SessionService.method.validateSession, { sessionToken: live.sessionToken });
      const fromGrpcSlow = await call(grpcSlow, SessionService.method.validateSession, { sessionToken: live.sessionToken });
      expect(fastPathCalls - before).toBe(3);

      expect(fromConnect.accountId).toBe(live.accountId);
      expect(fromConnect.sessionId).not.toBe("");
      expect(Number(fromConnect.expireTime?.seconds)).toBeGreaterThan(Date.now() / 1000);
      for (const answer of [fromGrpcJs, fromGrpcJsCached, fromGrpcFast, fromGrpcSlow]) {
        expect(equals(ValidateSessionResponseSchema, answer, fromConnect)).toBe(true);
      }
    });

    const refusals: Array<[string, string, Code, string]> = [
      ["a bogus token", BOGUS_TOKEN, Code.Unauthenticated, "SESSION_INVALID"],
      ["a token that is not even shaped like one", "bogus", Code.Unauthenticated, "SESSION_INVALID"],
      ["an empty token", "", Code.InvalidArgument, "INVALID_ARGUMENT"],
      // Larger than 16 KiB (the fast path's former limit) but within the server's 64 KiB.
      ["a 20 KB token", "x".repeat(20_000), Code.Unauthenticated, "SESSION_INVALID"],
    ];

    it.each(refusals)("refuses %s identically on both paths", async (_name, sessionToken, code, reason) => {
      const { connect, grpcFast, grpcSlow } = transports();
      const slow = await refusal(call(connect, SessionService.method.validateSession, { sessionToken }));
      const slowGrpc = await refusal(call(grpcSlow, SessionService.method.validateSession, { sessionToken }));
      const fast = await refusal(call(grpcFast, SessionService.method.validateSession, { sessionToken }));
      expect(slow.code).toBe(code);
      expect(slow.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
      for (const other of [slowGrpc, fast]) {
        expect(other.code).toBe(slow.code);
        expect(other.rawMessage).toBe(slow.rawMessage);
        expect(other.findDetails(ErrorInfoSchema)).toEqual(slow.findDetails(ErrorInfoSchema));
        expect(other.findDetails(BadRequestSchema)).toEqual(slow.findDetails(BadRequestSchema));
      }
      // grpc-js (a client we did not write) gets the same code and message from the fast path.
      // (It decodes grpc-message with decodeURI, which would leave reserved characters such as
      // ":" percent-encoded: our messages avoid them.)
      const fromGrpcJs = (await refusal(grpcJsCall(grpcJs, SessionService.method.validateSession, { sessionToken }))).cause as grpc.ServiceError;
      expect(fromGrpcJs.code).toBe(code as number);
      expect(fromGrpcJs.details).toBe(slow.rawMessage);
    });

    it("refuses a request over the 64 KiB limit with ResourceExhausted on both paths", async () => {
      const { grpcFast, grpcSlow } = transports();
      const sessionToken = "x".repeat(100_000);
      for (const transport of [grpcFast, grpcSlow]) {
        expect((await refusal(call(transport, SessionService.method.validateSession, { sessionToken }))).code).toBe(Code.ResourceExhausted);
      }
    });
  });

  describe("TLS with ALPN", () => {
    let tlsServer: TestServer;
    let ca: Buffer;
    let base: string;

    beforeAll(async () => {
      const dir = mkdtempSync(join(scratch, "tls-"));
      const { key, cert } = await selfSignedCertificate(dir);
      ca = readFileSync(cert);
      tlsServer = await startTestServer(backend, { env: { TLS_CERT_FILE: cert, TLS_KEY_FILE: key } });
      base = `https://localhost:${tlsServer.port}`;
    });
    afterAll(async () => {
      await tlsServer?.close();
    });

    it("negotiates h2 and http/1.1 by ALPN", async () => {
      for (const protocol of ["h2", "http/1.1"]) {
        const socket = tls.connect({ host: "127.0.0.1", servername: "localhost", port: tlsServer.port, ca, ALPNProtocols: [protocol] });
        try {
          await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
          expect(socket.alpnProtocol).toBe(protocol);
        } finally {
          socket.destroy();
        }
      }
    });

    it("serves gRPC (grpc-js) over TLS, fast path included", async () => {
      const client = new grpc.Client(`localhost:${tlsServer.port}`, grpc.credentials.createSsl(ca));
      try {
        const refused = await refusal(grpcJsCall(client, SessionService.method.validateSession, { sessionToken: BOGUS_TOKEN }));
        expect((refused.cause as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
        const live = await signedUp(tlsServer, createGrpcTransport({ baseUrl: base, nodeOptions: { ca } }));
        const validated = await grpcJsCall(client, SessionService.method.validateSession, { sessionToken: live.sessionToken });
        expect(validated.accountId).toBe(live.accountId);
      } finally {
        client.close();
      }
    });

    it.each(["1.1", "2"] as const)("serves Connect JSON over TLS on HTTP/%s", async (httpVersion) => {
      const transport = createConnectTransport({ baseUrl: base, httpVersion, nodeOptions: { ca } });
      const refused = await refusal(call(transport, SessionService.method.validateSession, { sessionToken: BOGUS_TOKEN }));
      expect(refused.code).toBe(Code.Unauthenticated);
      expect(refused.findDetails(ErrorInfoSchema)[0]?.reason).toBe("SESSION_INVALID");
      const live = await signedUp(tlsServer, transport);
      expect((await call(transport, SessionService.method.validateSession, { sessionToken: live.sessionToken })).accountId).toBe(live.accountId);
    });

    it("serves /healthz over TLS", async () => {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const session = http2.connect(base, { ca });
        session.on("error", reject);
        const stream = session.request({ ":path": "/healthz" });
        let status = 0;
        let body = "";
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.setEncoding("utf8");
        stream.on("data", (c: string) => (body += c));
        stream.on("end", () => {
          session.close();
          resolve({ status, body });
        });
        stream.end();
      });
      expect(res).toEqual({ status: 200, body: "ok\n" });
    });
  });

  describe("graceful shutdown", () => {
    // A second HTTP server on the test server's runtime, closed with a grace long enough that a
    // loaded machine cannot make the in-flight calls miss it (TestServer.close allows only 1 s).
    it("finishes the calls in flight, then refuses new connections", async () => {
      const base = await startTestServer(backend);
      const server = createHttpServer({ config: base.config, runtime: base.runtime, log: createLogger("silent"), metrics: createMetrics() });
      const port = await server.listen();
      const url = `http://127.0.0.1:${port}`;
      const grpcJs = createCaller("grpc-js", url);
      const agent = new HttpAgent({ keepAlive: true });
      let closed: Promise<void> | undefined;
      try {
        // Hold each SignUp a little inside the server, so close() surely finds them in flight.
        const identity = base.runtime.app.identity;
        const signUp = identity.signUp.bind(identity);
        let entered = 0;
        identity.signUp = async (input) => {
          entered++;
          await new Promise((r) => setTimeout(r, 200));
          return signUp(input);
        };
        const connect = createConnectTransport({ baseUrl: url, httpVersion: "1.1", nodeOptions: { agent } });
        const calls = [
          ...[1, 2].map(() => grpcJs.call(IdentityService.method.signUp, { email: uniqueEmail("inflight-grpc"), password: PASSWORD })),
          ...[1, 2].map(() => call(connect, IdentityService.method.signUp, { email: uniqueEmail("inflight-connect"), password: PASSWORD })),
        ];
        const deadline = Date.now() + 5000;
        while (entered < calls.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        expect(entered).toBe(calls.length);

        const started = performance.now();
        closed = server.close(GRACE_MS);
        const results = await Promise.allSettled(calls);
        expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : r.status))).toEqual(Array(calls.length).fill("fulfilled"));
        // The HTTP/1.1 client lets go of its keep-alive sockets (see the known bug below); the
        // gRPC session ends by itself after GOAWAY. close() then returns without using the grace.
        agent.destroy();
        await closed;
        expect(performance.now() - started).toBeLessThan(GRACE_MS / 2);

        const refused = await new Promise<string>((resolve) => {
          const socket = net.connect(port, "127.0.0.1");
          socket.once("connect", () => {
            socket.destroy();
            resolve("connected");
          });
          socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
        });
        expect(refused).toBe("ECONNREFUSED");
        expect(await codeOf(grpcJs.call(SessionService.method.validateSession, { sessionToken: BOGUS_TOKEN }))).toBe(Code.Unavailable);
      } finally {
        grpcJs.close();
        agent.destroy();
        await (closed ?? server.close(0));
        await base.close();
      }
    });
  });
});

// On the plaintext port HTTP/1.1 connections are handed to an http.Server that does not
// listen itself; src/server/http.ts starts its connection tracking explicitly so idle
// keep-alive connections close at once on shutdown and header/request timeouts apply.
describe("shutdown with an idle HTTP/1.1 keep-alive connection", () => {
  it("does not wait out the grace", async () => {
    const base = await startTestServer("embedded");
    const server = createHttpServer({ config: base.config, runtime: base.runtime, log: createLogger("silent"), metrics: createMetrics() });
    const port = await server.listen();
    const agent = new HttpAgent({ keepAlive: true });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        httpGet({ host: "127.0.0.1", port, path: "/healthz", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        }).on("error", reject);
      });
      expect(status).toBe(200);
      const started = performance.now();
      await server.close(2000);
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      agent.destroy();
      await base.close();
    }
  });
});

describe("a plaintext HTTP/1.1 client that never finishes its headers", () => {
  it("is disconnected by the header timeout", async () => {
    const base = await startTestServer("embedded");
    try {
      const { connect } = await import("node:net");
      const socket = connect(base.port, "127.0.0.1");
      socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"); // never the blank line
      const closedAfter = await new Promise<number>((resolve) => {
        const started = performance.now();
        socket.on("close", () => resolve(performance.now() - started));
        socket.on("error", () => {});
        socket.resume(); // read the 408 so 'close' can fire
      });
      expect(closedAfter).toBeGreaterThan(9_000);
      expect(closedAfter).toBeLessThan(15_000);
    } finally {
      await base.close();
    }
  }, 20_000);
});

/** A method no service of the server has: GetUser's messages under a name AdminService does not define. */
function unknownMethod(): typeof AdminService.method.getUser {
  const service = { ...AdminService } as { methods: unknown[]; method: Record<string, unknown> };
  const method = { ...AdminService.method.getUser, name: "NoSuchMethod", localName: "noSuchMethod", parent: service };
  service.methods = [method];
  service.method = { noSuchMethod: method };
  return method as unknown as typeof AdminService.method.getUser;
}
