// Process lifecycle: validate config, migrate once, run one HTTP worker per
// core (node:cluster) or a single process on the embedded backend, and shut
// down gracefully on SIGTERM/SIGINT.
import cluster from "node:cluster";
import { ConfigError, loadConfig, type Config } from "../config.ts";
import { openServingDurable } from "./durable.ts";
import { createHttpServer } from "./http.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createMetrics } from "../interceptors/metrics.ts";
import { createRuntime } from "./wiring.ts";

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

/** Runs one serving process; resolves once it listens. */
export async function serve(config: Config, log: Logger, options: { migrate: boolean }) {
  const runtime = await createRuntime(config, log, { migrate: options.migrate });
  const server = createHttpServer({ config, runtime, log, metrics: createMetrics() });
  const port = await server.listen();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: finishing in-flight calls");
    await server.close(config.shutdownGraceMs);
    await runtime.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  return { port, runtime, server };
}

export async function start(): Promise<void> {
  const config = configOrExit();
  const log = createLogger(config.logLevel);
  if (config.workers <= 1 || !cluster.isPrimary) {
    const { port } = await serve(config, log, { migrate: cluster.isPrimary });
    log.info({ port, host: config.host, tls: Boolean(config.tlsCertFile), worker: cluster.worker?.id }, "listening");
    if (cluster.isPrimary) process.stdout.write(`identity service listening on ${config.tlsCertFile ? "https" : "http"}://${config.host}:${port}\n`);
    return;
  }
  // Primary: migrate and replay the erasure ledger once, then fork the workers that share the port.
  await (await openServingDurable(config, log, { prepare: true })).close();
  let stopping = false;
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    if (stopping) return;
    log.error({ worker: worker.id, code }, "worker exited; starting another");
    cluster.fork();
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM");
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  log.info({ workers: config.workers, port: config.port }, "started workers");
  process.stdout.write(`identity service listening on ${config.tlsCertFile ? "https" : "http"}://${config.host}:${config.port} (${config.workers} workers)\n`);
}
