// OpenTelemetry tracing, off unless configured (OTEL_* variables, see
// src/config.ts). When on: the W3C trace context of incoming calls is honoured
// (src/interceptors/tracing.ts makes one server span per RPC), and the ports
// to MySQL/SQLite, Redis/memory and argon2 are wrapped so each call is a child
// span. When off, nothing here runs and nothing is wrapped: the hot path pays
// nothing. Spans carry names of operations, never arguments or results, so no
// personal data or secret can reach an attribute.
import { context, propagation, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter } from "@opentelemetry/sdk-trace";
import type { PasswordHasher } from "../crypto/passwords.ts";

export interface Tracing {
  tracer: Tracer;
  /** Exports what is buffered (tests; shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Starts tracing: the OTLP/HTTP exporter to `url`, batched; or, for tests, the
 * given exporter, span by span. Installs the async context manager and the W3C
 * propagator, which only the traced code paths consult.
 */
export function startTracing(options: { serviceName: string; url?: string }, exporter?: SpanExporter): Tracing {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    spanProcessors: [exporter ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: options.url }) })],
  });
  return {
    tracer: provider.getTracer("identity-service"),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** Ends `span` when `result` settles; an error marks it, by its name only (messages may name a person). */
function endWith<T>(span: Span, result: T): T {
  if (result instanceof Promise) {
    return result.then(
      (value) => (span.end(), value),
      (error: unknown) => {
        fail(span, error);
        throw error;
      },
    ) as T;
  }
  span.end();
  return result;
}

function fail(span: Span, error: unknown) {
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.setAttribute("error.type", (error as { name?: string })?.name ?? "Error");
  span.end();
}

/** Runs `fn` as the child span `name` of the active context. */
function inSpan<T>(tracer: Tracer, name: string, attributes: Record<string, string>, fn: () => T): T {
  return tracer.startActiveSpan(name, { attributes }, (span) => {
    try {
      return endWith(span, fn());
    } catch (error) {
      fail(span, error);
      throw error;
    }
  });
}

/** A port whose every method call is a span `<system> <port>.<method>`. */
function tracedPort<T extends object>(port: T, portName: string, system: string, tracer: Tracer): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(port, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== "function" || typeof key !== "string") return value;
      if (!wrapped.has(key)) {
        const operation = `${portName}.${key}`;
        const attributes = { "db.system.name": system, "db.operation.name": operation };
        wrapped.set(key, function (this: unknown, ...args: unknown[]) {
          return inSpan(tracer, `${system} ${operation}`, attributes, () => (value as (...a: unknown[]) => unknown).apply(target, args));
        });
      }
      return wrapped.get(key);
    },
  });
}

/** A bundle of ports (DurableStores, EphemeralStores) with every port traced as `system`. */
export function tracedStores<T extends object>(stores: T, system: string, tracer: Tracer): T {
  const out = { ...stores } as Record<string, unknown>;
  for (const [name, port] of Object.entries(stores)) {
    if (port !== null && typeof port === "object") out[name] = tracedPort(port, name, system, tracer);
  }
  // Methods of the bundle itself (ping, close) keep their receiver.
  for (const key of ["ping", "close"]) {
    const fn = (stores as Record<string, unknown>)[key];
    if (typeof fn === "function") out[key] = (fn as () => unknown).bind(stores);
  }
  return out as T;
}

/** argon2 hashing and verification as spans (the password never is an attribute). */
export function tracedHasher(hasher: PasswordHasher, tracer: Tracer): PasswordHasher {
  const attributes = { "identity.hash": "argon2id" };
  return {
    hash: (password) => inSpan(tracer, "argon2 hash", attributes, () => hasher.hash(password)),
    verify: (hash, password) => inSpan(tracer, "argon2 verify", attributes, () => hasher.verify(hash, password)),
    verifyDummy: (password) => inSpan(tracer, "argon2 verify (unknown account)", attributes, () => hasher.verifyDummy(password)),
    needsRehash: (hash) => hasher.needsRehash(hash),
  };
}

export { trace };
