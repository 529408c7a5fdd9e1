// Prometheus metrics on /metrics: process defaults plus per-RPC counts and
// latency. One call shape for every way an RPC is answered: the interceptor
// for connect-node's calls, observe() for the gRPC fast path.
import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** "identity.v1.SessionService/ValidateSession": how metrics and logs name an RPC. */
export function procedureName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

export interface Metrics {
  registry: Registry;
  /** The text /metrics answers: this registry's, or the whole cluster's when a worker's scrape is given. */
  scrape(): Promise<string>;
  interceptor: Interceptor;
  /** Records one answered call: `error` undefined for success; `startedAt` from performance.now(). */
  observe(procedure: string, error: unknown, startedAt: number): void;
}

/** `throughCluster`: on a cluster worker, turns its registry into a scrape of every worker (server/cluster-metrics.ts). */
export function createMetrics(options: { throughCluster?: (registry: Registry) => () => Promise<string> } = {}): Metrics {
  const registry = new Registry();
  const scrape = options.throughCluster?.(registry) ?? (() => registry.metrics());
  collectDefaultMetrics({ register: registry });
  const calls = new Counter({
    name: "identity_rpc_calls_total",
    help: "RPCs answered, by procedure and code",
    labelNames: ["procedure", "code"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "identity_rpc_duration_seconds",
    help: "RPC handling time",
    labelNames: ["procedure"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // The labelled children, looked up once per (procedure, code): prom-client
  // otherwise sorts and joins the labels into a key on every call of the hot path.
  const callCounters = new Map<string, ReturnType<typeof calls.labels>>();
  const latencies = new Map<string, ReturnType<typeof latency.labels>>();
  const observe = (procedure: string, error: unknown, startedAt: number) => {
    const code = error === undefined ? "ok" : error instanceof ConnectError ? String(error.code) : "unknown";
    const key = `${procedure} ${code}`;
    let counter = callCounters.get(key);
    if (!counter) callCounters.set(key, (counter = calls.labels({ procedure, code })));
    counter.inc();
    let histogram = latencies.get(procedure);
    if (!histogram) latencies.set(procedure, (histogram = latency.labels({ procedure })));
    histogram.observe((performance.now() - startedAt) / 1000);
  };
  const interceptor: Interceptor = (next) => async (req) => {
    const startedAt = performance.now();
    const procedure = procedureName(req.method);
    try {
      const res = await next(req);
      observe(procedure, undefined, startedAt);
      return res;
    } catch (error) {
      observe(procedure, error, startedAt);
      throw error;
    }
  };
  return { registry, scrape, interceptor, observe };
}
