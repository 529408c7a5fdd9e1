// Prometheus metrics on /metrics: process defaults plus per-RPC counts and latency.
import type { Interceptor } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  interceptor: Interceptor;
  /** Records one call answered outside connect (the gRPC fast path). */
  observe(procedure: string, code: string, seconds: number): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const calls = new Counter({ name: "identity_rpc_calls_total", help: "RPCs answered, by procedure and code", labelNames: ["procedure", "code"], registers: [registry] });
  const latency = new Histogram({
    name: "identity_rpc_duration_seconds",
    help: "RPC handling time",
    labelNames: ["procedure"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const observe = (procedure: string, code: string, seconds: number) => {
    calls.inc({ procedure, code });
    latency.observe({ procedure }, seconds);
  };
  const interceptor: Interceptor = (next) => async (req) => {
    const started = performance.now();
    const procedure = `${req.method.parent.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      observe(procedure, "ok", (performance.now() - started) / 1000);
      return res;
    } catch (error) {
      observe(procedure, error instanceof ConnectError ? String(error.code) : "unknown", (performance.now() - started) / 1000);
      throw error;
    }
  };
  return { registry, interceptor, observe };
}
