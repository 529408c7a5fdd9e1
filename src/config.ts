// The only reader of process.env: a typed, frozen Config, validated once at start.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  /** MySQL/MariaDB URL; undefined means the embedded SQLite file. */
  readonly mysqlUrl: string | undefined;
  /**
   * The key store's own MySQL/MariaDB database (wrapped data keys and the erasure
   * ledger), backed up apart from the main one; undefined: the main database
   * (embedded: always its own file, keys.sqlite).
   */
  readonly keystoreMysqlUrl: string | undefined;
  /** PEM file of the CA that signed the MySQL servers' certificates: TLS, verified. */
  readonly mysqlTlsCaFile: string | undefined;
  /** PEM file of the CA that signed the Redis server's certificate: TLS (also with rediss:// URLs), verified. */
  readonly redisTlsCaFile: string | undefined;
  /** Redis URL; undefined means the in-process store (or a Redis Cluster, below). */
  readonly redisUrl: string | undefined;
  /**
   * Redis Cluster seed nodes (REDIS_CLUSTER_NODES), instead of REDIS_URL: the
   * ephemeral stores then use an ioredis Cluster. Never set together with redisUrl.
   */
  readonly redisClusterNodes: ReadonlyArray<{ readonly host: string; readonly port: number }> | undefined;
  /** Prefix of every Redis key and channel, so deployments can share one Redis. */
  readonly redisKeyPrefix: string;
  /** Directory for the embedded database and generated development keys. */
  readonly dataDir: string;
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
  /**
   * Where SMS (phone codes) go: a signed webhook, Twilio, or "none" (phone codes
   * turned off); undefined when nothing is configured (development: the log).
   */
  readonly sms: SmsConfig | undefined;
  /** Base URL of links in messages (the page that calls VerifyIdentity etc.). */
  readonly publicUrl: string;
  /** Key-encryption keys (32 bytes each) by id; the first wraps new data keys. */
  readonly keyEncryptionKeys: ReadonlyArray<{ id: string; key: Buffer }> | undefined;
  /** HMAC key for blind indexes of emails/phones; separate from the KEK. */
  readonly blindIndexKey: Buffer | undefined;
  /** Optional pepper mixed into password hashes (argon2 secret). */
  readonly passwordPepper: Buffer | undefined;
  readonly corsOrigins: readonly string[];
  readonly logLevel: string;
  /** LOG_FORMAT: json, or pretty (development only); undefined: pretty in development on a terminal, else JSON. */
  readonly logFormat: "json" | "pretty" | undefined;
  /** HTTP worker processes (node:cluster); 1 on the embedded backend. */
  readonly workers: number;
  /** Trust X-Forwarded-For from this many proxies when finding the client IP. */
  readonly trustedProxies: number;
  readonly verificationLinkTtlMs: number;
  /** The `iss` of access tokens (ACCESS_TOKEN_ISSUER, default PUBLIC_URL). */
  readonly accessTokenIssuer: string;
  /** Lifetime of an access token (SessionService/IssueAccessToken). */
  readonly accessTokenTtlMs: number;
  /** Age at which the access-token signing key is replaced. */
  readonly signingKeyRotationMs: number;
  /** How long domain events are kept once no delivery needs them (0: forever). */
  readonly eventRetentionMs: number;
  readonly shutdownGraceMs: number;
  /**
   * Development mode: the embedded backends and generated keys are allowed, and
   * messages may be written to the log instead of sent. Implicit only on an
   * environment with no production variable; otherwise DEVELOPMENT_MODE=true.
   */
  readonly development: boolean;
  /** Bounds on every backend call, so a backend that drops packets cannot hang a call or a probe. */
  readonly timeouts: {
    readonly mysqlConnectMs: number;
    readonly mysqlQueryMs: number;
    readonly redisConnectMs: number;
    readonly redisCommandMs: number;
    /** Each request to a social sign-in provider (discovery, JWKS, token endpoint). */
    readonly socialProviderMs: number;
  };
  /** Accept http:// issuers on loopback hosts for social providers (local test providers); never in production. */
  readonly socialAllowHttpLoopback: boolean;
  /** Webhooks and blocking hooks may reach loopback, private and link-local addresses (always so in development mode). */
  readonly webhookAllowPrivateNetworks: boolean;
  /**
   * OpenTelemetry tracing to an OTLP/HTTP collector; undefined (the default) when
   * off. On with OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint, unless
   * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
   */
  readonly tracing: { readonly url: string; readonly serviceName: string } | undefined;
  /** Problems worth a warning that do not stop the service (unknown variables), for the log. */
  readonly warnings: readonly string[];
  /**
   * How the outbox retries a message that could not be sent for a transient
   * reason (SMTP down, timeout, 4xx): the first delay, doubling with jitter up to
   * the maximum delay, until the message is older than the maximum age
   * (OUTBOX_RETRY_BASE_SECONDS, OUTBOX_RETRY_MAX_DELAY_SECONDS, OUTBOX_MAX_AGE_SECONDS).
   */
  readonly outboxRetry: { readonly baseDelayMs: number; readonly maxDelayMs: number; readonly maxAgeMs: number };
}

export type SmsConfig =
  | { readonly provider: "webhook"; readonly url: string; readonly secret: string }
  | {
      readonly provider: "twilio";
      readonly accountSid: string;
      readonly authToken: string;
      readonly from: string | undefined;
      readonly messagingServiceSid: string | undefined;
      readonly apiUrl: string;
    }
  | { readonly provider: "none" };

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, "is not a valid URL");
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(" or ")}`);
  }
  return raw;
}

/** REDIS_CLUSTER_NODES: "host:port,host:port" (IPv6 as [addr]:port); seeds only, the rest of the cluster is discovered. */
function clusterNodes(env: Env): Config["redisClusterNodes"] {
  const raw = env.REDIS_CLUSTER_NODES;
  if (raw === undefined || raw.trim() === "") return undefined;
  const nodes = raw.split(",").map((entry) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@]+)):(\d{1,5})$/.exec(entry.trim());
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535) {
      throw new ConfigError("REDIS_CLUSTER_NODES", `must be a comma-separated list of host:port, got "${entry.trim()}"`);
    }
    return Object.freeze({ host: (match[1] ?? match[2])!, port });
  });
  return Object.freeze(nodes);
}

function file(env: Env, name: string): string | undefined {
  const path = env[name];
  if (path === undefined || path === "") return undefined;
  if (!existsSync(path)) throw new ConfigError(name, `names a file that does not exist: ${path}`);
  return path;
}

function key32(name: string, raw: string): Buffer {
  const key = Buffer.from(raw, "base64");
  if (key.length !== 32) throw new ConfigError(name, "must be 32 bytes, base64-encoded (openssl rand -base64 32)");
  return key;
}

/** KEK list: "id1:base64key,id2:base64key" or a bare base64 key (id "k1"). */
function keyEncryptionKeys(env: Env): Config["keyEncryptionKeys"] {
  const raw = env.KEY_ENCRYPTION_KEYS;
  if (raw === undefined || raw === "") return undefined;
  const keys = raw.split(",").map((entry, index) => {
    const separator = entry.indexOf(":");
    const id = separator > 0 ? entry.slice(0, separator).trim() : `k${index + 1}`;
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new ConfigError("KEY_ENCRYPTION_KEYS", `has an invalid key id "${id}"`);
    return { id, key: key32("KEY_ENCRYPTION_KEYS", entry.slice(separator + 1).trim()) };
  });
  if (new Set(keys.map((k) => k.id)).size !== keys.length) throw new ConfigError("KEY_ENCRYPTION_KEYS", "repeats a key id");
  return keys;
}

/** Every variable loadConfig reads; anything else with one of their prefixes is most likely a typo. */
const KNOWN_VARIABLES = [
  "PORT",
  "HOST",
  "TLS_CERT_FILE",
  "TLS_KEY_FILE",
  "MYSQL_URL",
  "KEYSTORE_MYSQL_URL",
  "MYSQL_TLS_CA_FILE",
  "MYSQL_CONNECT_TIMEOUT_MS",
  "MYSQL_QUERY_TIMEOUT_MS",
  "REDIS_URL",
  "REDIS_CLUSTER_NODES",
  "REDIS_TLS_CA_FILE",
  "REDIS_KEY_PREFIX",
  "REDIS_CONNECT_TIMEOUT_MS",
  "REDIS_COMMAND_TIMEOUT_MS",
  "DATA_DIR",
  "SMTP_URL",
  "MAIL_FROM",
  "SMS_PROVIDER",
  "SMS_WEBHOOK_URL",
  "SMS_WEBHOOK_SECRET",
  "TWILIO_ACCOUNT_SID",
  "TWILIO_AUTH_TOKEN",
  "TWILIO_FROM",
  "TWILIO_MESSAGING_SERVICE_SID",
  "TWILIO_API_URL",
  "PUBLIC_URL",
  "KEY_ENCRYPTION_KEYS",
  "BLIND_INDEX_KEY",
  "PASSWORD_PEPPER",
  "CORS_ORIGINS",
  "LOG_LEVEL",
  "LOG_FORMAT",
  "WORKERS",
  "TRUSTED_PROXIES",
  "VERIFICATION_LINK_TTL_SECONDS",
  "ACCESS_TOKEN_TTL_SECONDS",
  "ACCESS_TOKEN_ISSUER",
  "SIGNING_KEY_ROTATION_DAYS",
  "EVENT_RETENTION_DAYS",
  "SHUTDOWN_GRACE_SECONDS",
  "DEVELOPMENT_MODE",
  "SOCIAL_PROVIDER_TIMEOUT_MS",
  "SOCIAL_ALLOW_HTTP_LOOPBACK",
  "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
  "OUTBOX_RETRY_BASE_SECONDS",
  "OUTBOX_RETRY_MAX_DELAY_SECONDS",
  "OUTBOX_MAX_AGE_SECONDS",
  "OTEL_SDK_DISABLED",
  "OTEL_TRACES_EXPORTER",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_SERVICE_NAME",
];
// OTEL_ is left out: the OpenTelemetry exporter reads more of its standard variables (headers, timeouts) itself.
const KNOWN_PREFIXES = [...new Set(KNOWN_VARIABLES.filter((v) => v.includes("_")).map((v) => v.slice(0, v.indexOf("_") + 1)))].filter((p) => p !== "OTEL_");

/** Variables that only make sense in production: set without MYSQL_URL and REDIS_URL, they suggest a mistake. */
const PRODUCTION_VARIABLES = [
  "KEY_ENCRYPTION_KEYS",
  "BLIND_INDEX_KEY",
  "PASSWORD_PEPPER",
  "SMTP_URL",
  "SMS_WEBHOOK_URL",
  "TWILIO_ACCOUNT_SID",
  "MYSQL_TLS_CA_FILE",
  "REDIS_TLS_CA_FILE",
  "REDIS_KEY_PREFIX",
];

function unknownVariables(env: Env): string[] {
  return Object.keys(env)
    .filter((name) => env[name] !== undefined && !KNOWN_VARIABLES.includes(name) && KNOWN_PREFIXES.some((p) => name.startsWith(p)))
    .sort();
}

function flag(env: Env, name: string): boolean {
  const raw = (env[name] ?? "").toLowerCase();
  if (raw === "" || raw === "false" || raw === "0") return false;
  if (raw === "true" || raw === "1") return true;
  throw new ConfigError(name, `must be true or false, got "${env[name]}"`);
}

/** The standard OpenTelemetry variables, as far as this service reads them: OTLP over HTTP, traces only. */
function tracing(env: Env): Config["tracing"] {
  if (flag(env, "OTEL_SDK_DISABLED")) return undefined;
  const exporter = env.OTEL_TRACES_EXPORTER || undefined;
  if (exporter !== undefined && exporter !== "otlp" && exporter !== "none") throw new ConfigError("OTEL_TRACES_EXPORTER", "must be otlp or none");
  const tracesEndpoint = url(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ["http:", "https:"]);
  const endpoint = url(env, "OTEL_EXPORTER_OTLP_ENDPOINT", ["http:", "https:"]);
  if (exporter === "none" || (exporter === undefined && tracesEndpoint === undefined && endpoint === undefined)) return undefined;
  // Per the specification, the generic endpoint gets /v1/traces appended; the signal-specific one is used as is.
  const target = tracesEndpoint ?? `${(endpoint ?? "http://localhost:4318").replace(/\/+$/, "")}/v1/traces`;
  return Object.freeze({ url: target, serviceName: env.OTEL_SERVICE_NAME || "identity" });
}

/** Defaults: 30 s doubling up to an hour between attempts, for two days (an outage over a weekend night is survived). */
function outboxRetry(env: Env): Config["outboxRetry"] {
  const baseDelayMs = integer(env, "OUTBOX_RETRY_BASE_SECONDS", 30, 1, 3600) * 1000;
  const maxDelayMs = integer(env, "OUTBOX_RETRY_MAX_DELAY_SECONDS", 3600, 1, 24 * 3600) * 1000;
  const maxAgeMs = integer(env, "OUTBOX_MAX_AGE_SECONDS", 2 * 24 * 3600, 60, 30 * 24 * 3600) * 1000;
  if (maxDelayMs < baseDelayMs) throw new ConfigError("OUTBOX_RETRY_MAX_DELAY_SECONDS", "must be at least OUTBOX_RETRY_BASE_SECONDS");
  return Object.freeze({ baseDelayMs, maxDelayMs, maxAgeMs });
}

const SMS_VARIABLES = {
  webhook: ["SMS_WEBHOOK_URL", "SMS_WEBHOOK_SECRET"],
  twilio: ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_URL"],
} as const;

/**
 * A provider URL: https, or plain http to this host only (a sidecar) or in
 * development mode — the body carries a live code.
 */
function providerUrl(env: Env, name: string, development: boolean): string | undefined {
  const raw = url(env, name, ["http:", "https:"]);
  if (raw === undefined) return undefined;
  const parsed = new URL(raw);
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname) || /^127\./.test(parsed.hostname);
  if (parsed.protocol === "http:" && !loopback && !development) {
    throw new ConfigError(name, "must use https (plain http only to this host, or in development mode): the request carries a live code");
  }
  if (parsed.username || parsed.password) throw new ConfigError(name, "must not carry credentials (use the provider's own variables)");
  return raw;
}

/** SMS_PROVIDER (webhook, twilio, none), or the provider whose variables are set; undefined: none configured. */
function smsConfig(env: Env, development: boolean): SmsConfig | undefined {
  const set = (name: string) => env[name] !== undefined && env[name] !== "";
  const raw = env.SMS_PROVIDER || undefined;
  if (raw !== undefined && raw !== "webhook" && raw !== "twilio" && raw !== "none") throw new ConfigError("SMS_PROVIDER", "must be webhook, twilio or none");
  const configured = (["webhook", "twilio"] as const).filter((p) => SMS_VARIABLES[p].some(set));
  const provider = raw ?? (configured.length > 1 ? "both" : configured[0]);
  if (provider === "both") throw new ConfigError("SMS_PROVIDER", "must choose webhook or twilio: variables of both are set");
  for (const other of configured.filter((p) => p !== provider)) {
    throw new ConfigError(SMS_VARIABLES[other].find(set)!, `is set but SMS_PROVIDER is ${provider}`);
  }
  if (provider === undefined) return undefined;
  if (provider === "none") return Object.freeze({ provider });
  if (provider === "webhook") {
    const url = providerUrl(env, "SMS_WEBHOOK_URL", development);
    if (url === undefined) throw new ConfigError("SMS_WEBHOOK_URL", "is required for the webhook SMS provider");
    const secret = env.SMS_WEBHOOK_SECRET ?? "";
    if (secret.length < 32) throw new ConfigError("SMS_WEBHOOK_SECRET", "must be at least 32 characters (openssl rand -hex 32): it signs every request");
    return Object.freeze({ provider, url, secret });
  }
  const accountSid = env.TWILIO_ACCOUNT_SID ?? "";
  if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) throw new ConfigError("TWILIO_ACCOUNT_SID", "must be a Twilio account SID (AC and 32 hex digits)");
  const authToken = env.TWILIO_AUTH_TOKEN ?? "";
  if (authToken === "") throw new ConfigError("TWILIO_AUTH_TOKEN", "is required for the twilio SMS provider");
  const from = env.TWILIO_FROM || undefined;
  const messagingServiceSid = env.TWILIO_MESSAGING_SERVICE_SID || undefined;
  if ((from === undefined) === (messagingServiceSid === undefined)) {
    throw new ConfigError("TWILIO_FROM", "or TWILIO_MESSAGING_SERVICE_SID is required, not both: the sender of every SMS");
  }
  // An E.164 number, or an alphanumeric sender id (up to 11 letters, digits and spaces, at least one letter).
  if (from !== undefined && !/^\+[1-9][0-9]{6,14}$/.test(from) && !/^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/.test(from)) {
    throw new ConfigError("TWILIO_FROM", "must be an E.164 number (+15551234567) or an alphanumeric sender id of at most 11 characters");
  }
  if (messagingServiceSid !== undefined && !/^MG[0-9a-fA-F]{32}$/.test(messagingServiceSid)) {
    throw new ConfigError("TWILIO_MESSAGING_SERVICE_SID", "must be a Messaging Service SID (MG and 32 hex digits)");
  }
  const apiUrl = (providerUrl(env, "TWILIO_API_URL", development) ?? "https://api.twilio.com").replace(/\/+$/, "");
  return Object.freeze({ provider, accountSid, authToken, from, messagingServiceSid, apiUrl });
}

export function loadConfig(env: Env = process.env): Config {
  const mysqlUrl = url(env, "MYSQL_URL", ["mysql:", "mariadb:"]);
  const redisUrl = url(env, "REDIS_URL", ["redis:", "rediss:"]);
  const redisClusterNodes = clusterNodes(env);
  if (redisUrl !== undefined && redisClusterNodes !== undefined) {
    throw new ConfigError(
      "REDIS_CLUSTER_NODES",
      "and REDIS_URL are both set: set REDIS_URL for one Redis server, or REDIS_CLUSTER_NODES for a Redis Cluster, not both",
    );
  }
  const redisPrefix = env.REDIS_KEY_PREFIX ?? "identity:";
  // A brace in the prefix would become every key's hash tag: the whole service on one slot.
  if (redisClusterNodes !== undefined && /[{}]/.test(redisPrefix)) {
    throw new ConfigError("REDIS_KEY_PREFIX", "must not contain { or } with REDIS_CLUSTER_NODES (it would put every key on one hash slot)");
  }
  const redisSet = redisUrl !== undefined || redisClusterNodes !== undefined;
  const keystoreMysqlUrl = url(env, "KEYSTORE_MYSQL_URL", ["mysql:", "mariadb:"]);
  const embedded = mysqlUrl === undefined || !redisSet;
  const unknown = unknownVariables(env);
  const developmentSwitch = flag(env, "DEVELOPMENT_MODE");
  const kek = keyEncryptionKeys(env);
  const blindIndexKey = env.BLIND_INDEX_KEY ? key32("BLIND_INDEX_KEY", env.BLIND_INDEX_KEY) : undefined;
  // Outside the embedded development mode, keys must come from the operator:
  // generated keys on a server's disk would defeat the point of encryption.
  if (!embedded && kek === undefined) throw new ConfigError("KEY_ENCRYPTION_KEYS", "is required when MYSQL_URL and REDIS_URL are set");
  if (!embedded && blindIndexKey === undefined) throw new ConfigError("BLIND_INDEX_KEY", "is required when MYSQL_URL and REDIS_URL are set");
  const tlsCertFile = env.TLS_CERT_FILE || undefined;
  const tlsKeyFile = env.TLS_KEY_FILE || undefined;
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    throw new ConfigError(tlsCertFile ? "TLS_KEY_FILE" : "TLS_CERT_FILE", "must be set together with the other TLS variable");
  }
  const host = env.HOST || (tlsCertFile ? "0.0.0.0" : "127.0.0.1");
  const publicUrl = url(env, "PUBLIC_URL", ["http:", "https:"]) ?? "http://localhost:3000";
  const mailFrom = env.MAIL_FROM || "Identity <no-reply@localhost>";
  if (!/^[^\r\n]*@[^\r\n]+$/.test(mailFrom)) throw new ConfigError("MAIL_FROM", "must contain an email address");
  const logLevel = env.LOG_LEVEL || "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel)) {
    throw new ConfigError("LOG_LEVEL", "must be one of fatal, error, warn, info, debug, trace, silent");
  }
  const logFormat = env.LOG_FORMAT || undefined;
  if (logFormat !== undefined && logFormat !== "json" && logFormat !== "pretty") throw new ConfigError("LOG_FORMAT", "must be json or pretty");
  const config: Config = {
    port: integer(env, "PORT", 8080, 0, 65535),
    host,
    tlsCertFile,
    tlsKeyFile,
    mysqlUrl: embedded ? undefined : mysqlUrl,
    redisUrl: embedded ? undefined : redisUrl,
    redisClusterNodes: embedded ? undefined : redisClusterNodes,
    keystoreMysqlUrl,
    mysqlTlsCaFile: file(env, "MYSQL_TLS_CA_FILE"),
    redisTlsCaFile: file(env, "REDIS_TLS_CA_FILE"),
    redisKeyPrefix: redisPrefix,
    dataDir: env.DATA_DIR || "data",
    smtpUrl: url(env, "SMTP_URL", ["smtp:", "smtps:"]),
    mailFrom,
    sms: smsConfig(env, embedded || developmentSwitch),
    publicUrl: publicUrl.replace(/\/+$/, ""),
    keyEncryptionKeys: kek,
    blindIndexKey,
    passwordPepper: env.PASSWORD_PEPPER ? Buffer.from(env.PASSWORD_PEPPER, "utf8") : undefined,
    corsOrigins: (env.CORS_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
    logLevel,
    logFormat,
    workers: embedded ? 1 : integer(env, "WORKERS", availableParallelism(), 1, 256),
    trustedProxies: integer(env, "TRUSTED_PROXIES", 0, 0, 10),
    verificationLinkTtlMs: integer(env, "VERIFICATION_LINK_TTL_SECONDS", 24 * 3600, 60, 7 * 24 * 3600) * 1000,
    accessTokenIssuer: env.ACCESS_TOKEN_ISSUER?.trim() || publicUrl.replace(/\/+$/, ""),
    accessTokenTtlMs: integer(env, "ACCESS_TOKEN_TTL_SECONDS", 300, 30, 3600) * 1000,
    signingKeyRotationMs: integer(env, "SIGNING_KEY_ROTATION_DAYS", 30, 1, 365) * 24 * 3600 * 1000,
    eventRetentionMs: integer(env, "EVENT_RETENTION_DAYS", 30, 0, 3650) * 24 * 3600 * 1000,
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_SECONDS", 10, 0, 600) * 1000,
    development: embedded || developmentSwitch,
    timeouts: Object.freeze({
      mysqlConnectMs: integer(env, "MYSQL_CONNECT_TIMEOUT_MS", 2000, 100, 60_000),
      mysqlQueryMs: integer(env, "MYSQL_QUERY_TIMEOUT_MS", 10_000, 100, 600_000),
      redisConnectMs: integer(env, "REDIS_CONNECT_TIMEOUT_MS", 2000, 100, 60_000),
      redisCommandMs: integer(env, "REDIS_COMMAND_TIMEOUT_MS", 2000, 100, 60_000),
      socialProviderMs: integer(env, "SOCIAL_PROVIDER_TIMEOUT_MS", 5000, 100, 60_000),
    }),
    socialAllowHttpLoopback: flag(env, "SOCIAL_ALLOW_HTTP_LOOPBACK"),
    webhookAllowPrivateNetworks: flag(env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
    tracing: tracing(env),
    warnings: unknown.map((name) => `unknown variable ${name} is ignored${suggestion(name)}`),
    outboxRetry: outboxRetry(env),
  };
  // Production logs are read by machines: one JSON object per line.
  if (logFormat === "pretty" && !config.development) throw new ConfigError("LOG_FORMAT", "pretty is for development mode only: production logs are JSON");
  if (mysqlUrl !== undefined && !redisSet) throw new ConfigError("REDIS_URL", "(or REDIS_CLUSTER_NODES) is required when MYSQL_URL is set");
  if (redisSet && mysqlUrl === undefined)
    throw new ConfigError("MYSQL_URL", `is required when ${redisUrl !== undefined ? "REDIS_URL" : "REDIS_CLUSTER_NODES"} is set`);
  if (keystoreMysqlUrl !== undefined && mysqlUrl === undefined)
    throw new ConfigError("KEYSTORE_MYSQL_URL", "needs MYSQL_URL (the embedded key store is keys.sqlite in DATA_DIR)");
  if (keystoreMysqlUrl !== undefined && keystoreMysqlUrl === mysqlUrl)
    throw new ConfigError("KEYSTORE_MYSQL_URL", "must name another database than MYSQL_URL (leave it unset to keep the keys in the main database)");
  if (embedded && !developmentSwitch && mysqlUrl === undefined && !redisSet) {
    // A misspelled MYSQL_URL must not quietly mean an embedded database: with any
    // sign of a production setup, development mode has to be asked for by name.
    const production = [...PRODUCTION_VARIABLES.filter((name) => env[name]), ...unknown.filter((name) => /^(MYSQL|REDIS)_/.test(name))];
    if (production.length > 0) {
      throw new ConfigError(
        "MYSQL_URL",
        `and REDIS_URL are not set, but ${production.join(", ")} ${production.length > 1 ? "are" : "is"}: set them, or DEVELOPMENT_MODE=true for the embedded development mode`,
      );
    }
  }
  return Object.freeze(config);
}

/**
 * What serving needs beyond loadConfig (operator commands do not send mail): in
 * production, messages carry live links and codes, so they must go to an SMTP
 * server and an SMS provider, never to the log. Phone sign-in needs SMS: a
 * deployment without it says so with SMS_PROVIDER=none.
 */
export function assertServable(config: Config): void {
  if (!config.development && config.smtpUrl === undefined) {
    throw new ConfigError(
      "SMTP_URL",
      "is required when MYSQL_URL and REDIS_URL are set (DEVELOPMENT_MODE=true writes messages to the log instead, links and codes included)",
    );
  }
  if (!config.development && config.sms === undefined) {
    throw new ConfigError(
      "SMS_PROVIDER",
      "is required when MYSQL_URL and REDIS_URL are set: phone codes are sent by SMS (set SMS_WEBHOOK_URL or TWILIO_ACCOUNT_SID and their variables, or SMS_PROVIDER=none to turn phone codes off; DEVELOPMENT_MODE=true writes them to the log instead)",
    );
  }
}

/** " (did you mean X?)" for the known variable closest to a misspelled one. */
function suggestion(name: string): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const known of KNOWN_VARIABLES) {
    const d = distance(name, known);
    if (d < bestDistance) [best, bestDistance] = [known, d];
  }
  return best ? ` (did you mean ${best}?)` : "";
}

/** Levenshtein distance, for suggestions only. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
