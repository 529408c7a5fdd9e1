// OpenTelemetry tracing (issue 14): with a tracer, one server span per RPC,
// child of the caller's W3C traceparent, naming the procedure, its code and the
// tenant, with child spans for MySQL, Redis and argon2 — and no personal data
// or secret in any attribute. Spans go to an in-memory exporter.
import { randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.ts";
import { startTracing, type Tracing } from "../../src/server/tracing.ts";
import { BACKENDS } from "../support/backends.ts";
import { request } from "../support/main-process.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

describe("tracing configuration", () => {
  it("is off by default, on with the standard OTEL variables", () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" }).tracing).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing).toEqual({
      url: "http://collector:4318/v1/traces",
      serviceName: "identity",
    });
    expect(loadConfig({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SERVICE_NAME: "idp" }).tracing).toEqual({
      url: "http://localhost:4318/v1/traces",
      serviceName: "idp",
    });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://c:4318/custom" }).tracing?.url).toBe("https://c:4318/custom");
    expect(() => loadConfig({ OTEL_TRACES_EXPORTER: "zipkin" })).toThrow(/OTEL_TRACES_EXPORTER/);
  });
});

describe.runIf(BACKENDS.includes("mysql"))("tracing an RPC over MariaDB, Redis and argon2", () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let server: TestServer;

  beforeAll(async () => {
    tracing = startTracing({ serviceName: "identity-test" }, exporter);
    server = await startTestServer("mysql", { tracer: tracing.tracer });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await tracing?.shutdown();
  });

  /** Every span below `parent`, depth first. */
  function descendants(spans: ReadableSpan[], parent: string): ReadableSpan[] {
    const children = spans.filter((s) => s.parentSpanContext?.spanId === parent);
    return children.flatMap((c) => [c, ...descendants(spans, c.spanContext().spanId)]);
  }

  it("continues the caller's trace: the RPC span is the traceparent's child, with MySQL, Redis and argon2 children, and no secret", async () => {
    const email = `trace-${hex(4)}@example.test`;
    const password = `secret-${hex(8)}-password`;
    const traceId = hex(16);
    const parentId = hex(8);
    exporter.reset();
    const res = await request(server.port, "POST", "/identity.v1.SessionService/SignIn", JSON.stringify({ emailPassword: { email, password } }), {
      "content-type": "application/json",
      traceparent: `00-${traceId}-${parentId}-01`,
      "x-tenant-id": "default",
    });
    expect(res.status).toBe(401); // unknown address: INVALID_CREDENTIALS, after a dummy hash
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const rpc = spans.find((s) => s.parentSpanContext?.spanId === parentId);
    expect(rpc, spans.map((s) => s.name).join(", ")).toBeDefined();
    expect(rpc!.spanContext().traceId).toBe(traceId);
    expect(rpc!.name).toBe("identity.v1.SessionService/SignIn");
    expect(rpc!.attributes).toMatchObject({
      "rpc.system": "connect_rpc",
      "rpc.service": "identity.v1.SessionService",
      "rpc.method": "SignIn",
      "rpc.connect_rpc.error_code": "unauthenticated",
      "identity.tenant_id": "default",
    });
    const below = descendants(spans, rpc!.spanContext().spanId);
    const systems = new Set(below.map((s) => s.attributes["db.system.name"]));
    expect(systems).toContain("mysql");
    expect(systems).toContain("redis");
    expect(below.some((s) => s.name.startsWith("argon2"))).toBe(true);
    for (const span of below) expect(span.spanContext().traceId).toBe(traceId);

    // No personal data or secret in any name or attribute.
    const text = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    expect(text).not.toContain(email);
    expect(text).not.toContain(email.split("@")[0]);
    expect(text).not.toContain(password);
  });

  it("takes the traceparent from gRPC metadata too (ValidateSession, the hot path), a token never in a span", async () => {
    exporter.reset();
    const traceId = hex(16);
    const parentId = hex(8);
    const token = `acc_x.${hex(32)}`;
    const client = createClient(SessionService, createGrpcTransport({ baseUrl: server.baseUrl }));
    const error = await client.validateSession({ sessionToken: token }, { headers: { traceparent: `00-${traceId}-${parentId}-01` } }).catch((e: unknown) => e);
    expect(ConnectError.from(error).code).toBe(Code.Unauthenticated);
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const rpc = spans.find((s) => s.parentSpanContext?.spanId === parentId)!;
    expect(rpc.name).toBe("identity.v1.SessionService/ValidateSession");
    expect(rpc.spanContext().traceId).toBe(traceId);
    expect(rpc.attributes["identity.code"]).toBe("unauthenticated");
    const text = JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes })));
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split(".")[1]);
  });

  it("marks a successful call ok", async () => {
    exporter.reset();
    const parentId = hex(8);
    const res = await request(server.port, "POST", "/grpc.health.v1.Health/Check", "{}", {
      "content-type": "application/json",
      traceparent: `00-${hex(16)}-${parentId}-01`,
    });
    expect(res.status).toBe(200);
    await tracing.flush();
    const rpc = exporter.getFinishedSpans().find((s) => s.parentSpanContext?.spanId === parentId)!;
    expect(rpc.attributes["identity.code"]).toBe("ok");
    expect(rpc.attributes["rpc.connect_rpc.error_code"]).toBeUndefined();
  });
});

describe("tracing the embedded backends", () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let server: TestServer;

  beforeAll(async () => {
    tracing = startTracing({ serviceName: "identity-test" }, exporter);
    server = await startTestServer("embedded", { tracer: tracing.tracer });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await tracing?.shutdown();
  });

  it("names SQLite and the in-process store as the systems of the child spans", async () => {
    exporter.reset();
    const parentId = hex(8);
    const res = await request(
      server.port,
      "POST",
      "/identity.v1.SessionService/SignIn",
      JSON.stringify({ emailPassword: { email: "nobody@example.test", password: "not the password at all" } }),
      {
        "content-type": "application/json",
        traceparent: `00-${hex(16)}-${parentId}-01`,
      },
    );
    expect(res.status).toBe(401);
    await tracing.flush();
    const spans = exporter.getFinishedSpans();
    const rpc = spans.find((s) => s.parentSpanContext?.spanId === parentId)!;
    const systems = new Set(spans.filter((s) => s.spanContext().traceId === rpc.spanContext().traceId).map((s) => s.attributes["db.system.name"]));
    expect(systems).toContain("sqlite");
    expect(systems).toContain("memory");
  });
});
