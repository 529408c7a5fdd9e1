// Process lifecycle: validate config, migrate once, run one HTTP worker per
// core (node:cluster) or a single process on the embedded backend, and shut
// down gracefully on SIGTERM/SIGINT.
import cluster from "node:cluster";
import { setTimeout as sleep } from "node:timers/promises";
import { assertServable, ConfigError, loadConfig, type Config } from "../config.ts";
import type { DurableStores } from "../domain/ports/stores.ts";
import { configurationErrorOf } from "../store/sql/open.ts";
import { openServingDurable } from "./durable.ts";
import { aggregateWorkerMetrics, scrapeThroughPrimary } from "./cluster-metrics.ts";
import { createHttpServer } from "./http.ts";
import { startTracing } from "./tracing.ts";
import { chooseLogFormat, createLogger, type Logger } from "./logger.ts";
import { createMetrics } from "../interceptors/metrics.ts";
import { createRuntime } from "./wiring.ts";

/** EX_CONFIG: a configuration error that restarting cannot fix. */
const EXIT_CONFIG = 78;

function exitOnConfigError(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  throw error;
}

function configOrExit(): Config {
  try {
    const config = loadConfig();
    assertServable(config);
    return config;
  } catch (error) {
    return exitOnConfigError(error);
  }
}

/**
 * Opens the durable stores, retrying with backoff while the database cannot be
 * reached (one line when it fails, one when it answers); a refusal that retrying
 * cannot fix (bad credentials, unknown database) is a ConfigError.
 */
async function openDurableRetrying(config: Config, log: Logger, options: { prepare: boolean }): Promise<DurableStores> {
  let delayMs = 500;
  let failing: string | undefined;
  for (;;) {
    try {
      const stores = await openServingDurable(config, log, options);
      if (failing) log.info("MYSQL_URL: the database answers: starting");
      return stores;
    } catch (error) {
      if (!config.mysqlUrl) throw error; // the embedded file: nothing to wait for
      const refused = configurationErrorOf(config, error);
      if (refused) throw refused;
      const cause = String((error as { code?: string }).code ?? (error as Error).message);
      if (cause !== failing) log.warn({ cause }, `MYSQL_URL: the database cannot be reached (${cause}); retrying with backoff until it answers`);
      failing = cause;
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 15_000);
    }
  }
}

/** Runs one serving process; resolves once it listens. */
export async function serve(config: Config, log: Logger, options: { migrate: boolean }) {
  // The database is opened (and migrated) before anything serves; Redis may come later.
  await (await openDurableRetrying(config, log, { prepare: options.migrate })).close();
  const tracing = config.tracing ? startTracing({ serviceName: config.tracing.serviceName, url: config.tracing.url }) : undefined;
  const runtime = await createRuntime(config, log, { migrate: false, tracer: tracing?.tracer });
  runtime.readiness.watch();
  const metrics = createMetrics({ throughCluster: cluster.isWorker ? scrapeThroughPrimary : undefined });
  const server = createHttpServer({ config, runtime, log, metrics, tracer: tracing?.tracer });
  const port = await server.listen();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: finishing in-flight calls");
    await server.close(config.shutdownGraceMs);
    await runtime.close();
    await tracing?.shutdown().catch(() => {}); // the last spans, if the collector takes them
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  return { port, runtime, server };
}

export async function start(): Promise<void> {
  const config = configOrExit();
  const log = createLogger(config.logLevel, undefined, chooseLogFormat(config, process.stdout.isTTY === true));
  if (cluster.isPrimary) {
    for (const warning of config.warnings) log.warn(warning);
  }
  if (config.workers <= 1 || !cluster.isPrimary) {
    const { port } = await serve(config, log, { migrate: cluster.isPrimary }).catch(exitOnConfigError);
    log.info({ port, host: config.host, tls: Boolean(config.tlsCertFile), worker: cluster.worker?.id }, "listening");
    if (cluster.isPrimary) process.stdout.write(`identity service listening on ${config.tlsCertFile ? "https" : "http"}://${config.host}:${port}\n`);
    return;
  }
  // Primary: migrate and replay the erasure ledger once, then fork the workers that share the port.
  await (await openDurableRetrying(config, log, { prepare: true }).catch(exitOnConfigError)).close();
  let stopping = false;
  aggregateWorkerMetrics();
  for (let i = 0; i < config.workers; i++) cluster.fork();
  cluster.on("exit", (worker, code) => {
    if (stopping) return;
    if (code === EXIT_CONFIG) {
      // Another worker would fail the same way: stop instead of looping.
      stop();
      process.exitCode = EXIT_CONFIG;
      return;
    }
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
