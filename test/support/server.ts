// A real identity server on a free port, wired exactly as in production
// (createRuntime + createHttpServer), on the chosen backend, with a real SMTP
// server capturing what it sends and a local SMS webhook provider (it checks
// every request's signature) receiving its SMS.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createConnection } from "mysql2/promise";
import { loadConfig, type Config } from "../../src/config.ts";
import { createHttpServer } from "../../src/server/http.ts";
import { createLogger } from "../../src/server/logger.ts";
import type { Tracer } from "@opentelemetry/api";
import { createMetrics, type Metrics } from "../../src/interceptors/metrics.ts";
import { createRuntime, type Runtime, type RuntimeOptions } from "../../src/server/wiring.ts";
import { createMysqlDatabase, REDIS_URL, redisPrefix, type BackendName } from "./backends.ts";
import { viaProxy, type TcpProxy } from "./proxy.ts";
import { startSmtp, type Received, type Smtp } from "./smtp.ts";
import { type ReceivedSms, type SmsProvider, startSmsProvider } from "./sms-provider.ts";

export interface TestServer {
  baseUrl: string;
  port: number;
  config: Config;
  runtime: Runtime;
  /** The server's metrics (the gRPC fast path records through metrics.observe). */
  metrics: Metrics;
  /** Every message the SMTP server received, in order. */
  inbox: Received[];
  /** The SMTP server the service sends to (make it refuse recipients with smtp.refuse). */
  smtp: Smtp;
  /**
   * The SMS webhook provider the service sends to (sms.delivered; sms.answerNext to
   * make it fail, sms.stop/start to take it down); undefined with `sms: false` or
   * when the test's env names its own SMS provider.
   */
  sms: SmsProvider | undefined;
  /** Resolves with the first SMS delivered to `phone` (E.164) matching `filter`, waiting up to 10 s. */
  waitForSms(phone: string, filter?: (sms: ReceivedSms) => boolean): Promise<ReceivedSms>;
  /** Every row of a table, read directly from the database (not through the service). */
  rawRows(table: string): Promise<Array<Record<string, unknown>>>;
  /** Names of every table in the database. */
  rawTables(): Promise<string[]>;
  /** Every row of a key-store table (account_keys, erasure_ledger), read directly from the key store's database. */
  rawKeyRows(table: string): Promise<Array<Record<string, unknown>>>;
  /**
   * Stops the service (HTTP server and runtime) and starts it again on the same
   * databases and configuration, on a new port: baseUrl, port and runtime change.
   */
  restart(): Promise<void>;
  /** Resolves with the first received message to `address` matching `filter`, waiting up to 10 s. */
  waitForMail(address: string, filter?: (mail: Received) => boolean): Promise<Received>;
  close(): Promise<void>;
}

export async function startTestServer(
  backend: BackendName,
  options: {
    env?: Record<string, string>;
    runtime?: RuntimeOptions;
    logLines?: string[];
    /** Reach MySQL and/or Redis through these proxies (test/support/proxy.ts), to fail them. */
    via?: { mysql?: TcpProxy; redis?: TcpProxy };
    /** Traces the runtime and the RPCs (src/server/tracing.ts). */
    tracer?: Tracer;
    /** REDIS_CLUSTER_NODES of a Redis Cluster (test/support/redis-cluster.ts) to use instead of the shared Redis. */
    redisCluster?: string;
    /** false: no SMS provider (development logs SMS; production keeps them queued). */
    sms?: false;
  } = {},
): Promise<TestServer> {
  const inbox: Received[] = [];
  const smtp = await startSmtp(inbox);
  const ownSmsProvider = Object.keys(options.env ?? {}).some((name) => /^(SMS_|TWILIO_)/.test(name));
  const smsSecret = randomBytes(32).toString("hex");
  const sms = options.sms === false || ownSmsProvider ? undefined : await startSmsProvider({ kind: "webhook", secret: smsSecret, dedupe: true });
  const dataDir = mkdtempSync(join(tmpdir(), "identity-test-"));
  const mysql = backend === "mysql" ? await createMysqlDatabase() : undefined;
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    MAIL_FROM: "Identity <no-reply@example.test>",
    PUBLIC_URL: "https://app.example.test",
    KEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
    BLIND_INDEX_KEY: randomBytes(32).toString("base64"),
    SHUTDOWN_GRACE_SECONDS: "2",
    ...(sms ? { SMS_WEBHOOK_URL: `${sms.url}/sms`, SMS_WEBHOOK_SECRET: smsSecret } : {}),
    ...(mysql
      ? {
          MYSQL_URL: options.via?.mysql ? viaProxy(mysql.url, options.via.mysql) : mysql.url,
          ...(options.redisCluster
            ? { REDIS_CLUSTER_NODES: options.redisCluster }
            : { REDIS_URL: options.via?.redis ? viaProxy(REDIS_URL, options.via.redis) : REDIS_URL }),
          REDIS_KEY_PREFIX: redisPrefix(),
          WORKERS: "1",
        }
      : { DEVELOPMENT_MODE: "true" }),
    ...options.env,
  });
  const logLines = options.logLines;
  const log = createLogger(config.logLevel, logLines ? { write: (line: string) => void logLines.push(line) } : undefined);
  const start = async () => {
    const runtime = await createRuntime(config, log, { ...options.runtime, ...(options.tracer ? { tracer: options.tracer } : {}) });
    const metrics = createMetrics();
    const server = createHttpServer({ config, runtime, log, metrics, ...(options.tracer ? { tracer: options.tracer } : {}) });
    const port = await server.listen();
    return { runtime, metrics, server, port };
  };
  let { runtime, metrics, server, port } = await start();
  const testServer: TestServer = {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    config,
    runtime,
    metrics,
    inbox,
    smtp,
    sms,
    async waitForSms(phone, filter = () => true) {
      if (!sms) throw new Error("this test server has no SMS provider");
      const deadline = Date.now() + 10_000;
      for (;;) {
        const found = sms.delivered.find((m) => m.to === phone && filter(m));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no SMS to ${phone} within 10 s (${sms.delivered.length} delivered to others)`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async rawRows(table) {
      if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
      return rawQuery(config, `SELECT * FROM ${table}`);
    },
    async rawKeyRows(table) {
      if (!/^[a-z_]+$/.test(table)) throw new Error(`bad table name ${table}`);
      return rawQuery(config, `SELECT * FROM ${table}`, "keys");
    },
    async rawTables() {
      const rows = config.mysqlUrl
        ? await rawQuery(config, "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()")
        : await rawQuery(config, "SELECT name FROM sqlite_master WHERE type = 'table'");
      return rows.map((r) => String(r.name));
    },
    async waitForMail(address, filter = () => true) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const mail = inbox.find((m) => m.envelopeTo.includes(address) && filter(m));
        if (mail) return mail;
        if (Date.now() > deadline)
          throw new Error(`no mail to ${address} within 10 s (inbox: ${inbox.map((m) => `${m.envelopeTo.join(",")} ${m.subject}`).join("; ")})`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async restart() {
      await server.close(1000);
      await runtime.close();
      ({ runtime, metrics, server, port } = await start());
      Object.assign(testServer, { runtime, metrics, port, baseUrl: `http://127.0.0.1:${port}` });
    },
    async close() {
      await server.close(1000);
      await runtime.close();
      await smtp.close();
      await sms?.close();
      await mysql?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return testServer;
}

async function rawQuery(config: Config, query: string, store: "main" | "keys" = "main"): Promise<Array<Record<string, unknown>>> {
  if (config.mysqlUrl) {
    const connection = await createConnection({ uri: store === "keys" ? (config.keystoreMysqlUrl ?? config.mysqlUrl) : config.mysqlUrl });
    try {
      const [rows] = await connection.query(query);
      return rows as Array<Record<string, unknown>>;
    } finally {
      await connection.end();
    }
  }
  const database = new DatabaseSync(join(config.dataDir, store === "keys" ? "keys.sqlite" : "identity.sqlite"), { readOnly: true });
  try {
    return database.prepare(query).all() as Array<Record<string, unknown>>;
  } finally {
    database.close();
  }
}

/** The token of the first link in a message body. */
export function linkToken(text: string): string {
  const match = /[?&]token=([A-Za-z0-9_-]+)/.exec(text);
  if (!match?.[1]) throw new Error(`no token link in: ${text}`);
  return match[1];
}

/** Runs an operator command (`node src/cli/<script>`) as an operator would, with `env`; resolves with its exit code and output. */
export function runCli(script: string, env: Record<string, string>, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [`src/cli/${script}`, ...args], { cwd: process.cwd(), env, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

/** The environment an operator command (src/cli/*.ts) needs to reach this server's database and Redis. */
export function cliEnv(config: Config): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    DATA_DIR: config.dataDir,
    KEY_ENCRYPTION_KEYS: (config.keyEncryptionKeys ?? []).map((k) => `${k.id}:${k.key.toString("base64")}`).join(","),
    BLIND_INDEX_KEY: config.blindIndexKey?.toString("base64") ?? "",
    LOG_LEVEL: "error",
    ...(config.mysqlUrl
      ? {
          MYSQL_URL: config.mysqlUrl,
          ...(config.redisClusterNodes
            ? { REDIS_CLUSTER_NODES: config.redisClusterNodes.map((n) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(",") }
            : { REDIS_URL: config.redisUrl! }),
          REDIS_KEY_PREFIX: config.redisKeyPrefix,
        }
      : { DEVELOPMENT_MODE: "true" }),
    ...(config.keystoreMysqlUrl ? { KEYSTORE_MYSQL_URL: config.keystoreMysqlUrl } : {}),
  };
}
