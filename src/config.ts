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
  /** Redis URL; undefined means the in-process store. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key and channel, so deployments can share one Redis. */
  readonly redisKeyPrefix: string;
  /** Directory for the embedded database and generated development keys. */
  readonly dataDir: string;
  readonly smtpUrl: string | undefined;
  readonly mailFrom: string;
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
  /** HTTP worker processes (node:cluster); 1 on the embedded backend. */
  readonly workers: number;
  /** Trust X-Forwarded-For from this many proxies when finding the client IP. */
  readonly trustedProxies: number;
  readonly verificationLinkTtlMs: number;
  readonly shutdownGraceMs: number;
}

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

export function loadConfig(env: Env = process.env): Config {
  const mysqlUrl = url(env, "MYSQL_URL", ["mysql:", "mariadb:"]);
  const redisUrl = url(env, "REDIS_URL", ["redis:", "rediss:"]);
  const keystoreMysqlUrl = url(env, "KEYSTORE_MYSQL_URL", ["mysql:", "mariadb:"]);
  const embedded = mysqlUrl === undefined || redisUrl === undefined;
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
  const config: Config = {
    port: integer(env, "PORT", 8080, 0, 65535),
    host,
    tlsCertFile,
    tlsKeyFile,
    mysqlUrl: embedded ? undefined : mysqlUrl,
    redisUrl: embedded ? undefined : redisUrl,
    keystoreMysqlUrl,
    mysqlTlsCaFile: file(env, "MYSQL_TLS_CA_FILE"),
    redisTlsCaFile: file(env, "REDIS_TLS_CA_FILE"),
    redisKeyPrefix: env.REDIS_KEY_PREFIX ?? "identity:",
    dataDir: env.DATA_DIR || "data",
    smtpUrl: url(env, "SMTP_URL", ["smtp:", "smtps:"]),
    mailFrom,
    publicUrl: publicUrl.replace(/\/+$/, ""),
    keyEncryptionKeys: kek,
    blindIndexKey,
    passwordPepper: env.PASSWORD_PEPPER ? Buffer.from(env.PASSWORD_PEPPER, "utf8") : undefined,
    corsOrigins: (env.CORS_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    logLevel,
    workers: embedded ? 1 : integer(env, "WORKERS", availableParallelism(), 1, 256),
    trustedProxies: integer(env, "TRUSTED_PROXIES", 0, 0, 10),
    verificationLinkTtlMs: integer(env, "VERIFICATION_LINK_TTL_SECONDS", 24 * 3600, 60, 7 * 24 * 3600) * 1000,
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_SECONDS", 10, 0, 600) * 1000,
  };
  if (mysqlUrl !== undefined && redisUrl === undefined) throw new ConfigError("REDIS_URL", "is required when MYSQL_URL is set");
  if (redisUrl !== undefined && mysqlUrl === undefined) throw new ConfigError("MYSQL_URL", "is required when REDIS_URL is set");
  if (keystoreMysqlUrl !== undefined && mysqlUrl === undefined) throw new ConfigError("KEYSTORE_MYSQL_URL", "needs MYSQL_URL (the embedded key store is keys.sqlite in DATA_DIR)");
  if (keystoreMysqlUrl !== undefined && keystoreMysqlUrl === mysqlUrl) throw new ConfigError("KEYSTORE_MYSQL_URL", "must name another database than MYSQL_URL (leave it unset to keep the keys in the main database)");
  return Object.freeze(config);
}
