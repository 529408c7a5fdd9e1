// Opens the durable store: MySQL/MariaDB/TiDB through mysql2, or the embedded
// SQLite file. Only this folder imports database drivers.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Kysely, MysqlDialect, sql } from "kysely";
import { createPool } from "mysql2";
import type { Database } from "./schema.ts";
import { createNodeSqliteDialect } from "./sqlite-dialect.ts";

export type SqlDialectName = "mysql" | "sqlite";

export interface SqlDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: SqlDialectName;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<boolean>;
  /**
   * Runs `work` with no per-query time bound (migrations: an ALTER of a large
   * table may rightly take minutes). Only while nothing else uses the pool.
   */
  unbounded<T>(work: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface SqlOptions {
  mysqlUrl?: string | undefined;
  /** Embedded SQLite file path (or ":memory:") when mysqlUrl is not set. */
  sqlitePath?: string | undefined;
  poolSize?: number;
  /**
   * PEM certificate(s) of the CA that signed the MySQL server's certificate: the
   * connection then uses TLS and verifies the server. Without it, TLS is whatever
   * the URL's `ssl` parameter asks (mysql2: ?ssl={"rejectUnauthorized":true}).
   */
  tlsCa?: string | undefined;
  /** Bound on opening a connection (TCP and handshake); mysql2's own default is 10 s. */
  connectTimeoutMs?: number | undefined;
  /**
   * Bound on each query. A query that gets no answer in time fails (PROTOCOL_SEQUENCE_TIMEOUT)
   * and its connection is destroyed, since a late answer would land on the next query.
   */
  queryTimeoutMs?: number | undefined;
}

export function openSqlDatabase(options: SqlOptions): SqlDatabase {
  if (options.mysqlUrl) {
    const pool = createPool({
      uri: options.mysqlUrl.replace(/^mariadb:/, "mysql:"),
      connectionLimit: options.poolSize ?? 10,
      // Times are BIGINT epoch ms; keep them numbers (safe below 2^53).
      supportBigNumbers: true,
      bigNumberStrings: false,
      charset: "utf8mb4",
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      ...(options.tlsCa ? { ssl: { ca: options.tlsCa, rejectUnauthorized: true } } : {}),
    });
    const bound = { ms: options.queryTimeoutMs };
    pool.on("connection", (connection) => boundQueries(connection as unknown as RawConnection, () => bound.ms));
    return {
      ...wrap(new Kysely<Database>({ dialect: new MysqlDialect({ pool }) }), "mysql"),
      async unbounded(work) {
        const saved = bound.ms;
        bound.ms = undefined;
        try {
          return await work();
        } finally {
          bound.ms = saved;
        }
      },
    };
  }
  const path = options.sqlitePath ?? ":memory:";
  if (path !== ":memory:") mkdirSync(join(path, ".."), { recursive: true });
  return wrap(new Kysely<Database>({ dialect: createNodeSqliteDialect(path) }), "sqlite");
}

interface RawConnection {
  query(
    options: unknown,
    values?: unknown,
    callback?: (error: unknown, ...rest: unknown[]) => void,
  ): { once(event: "error", listener: (error: unknown) => void): unknown };
  destroy(): void;
}

/** Gives every query on this connection the current time bound (Kysely passes SQL text, mysql2 takes { sql, timeout }). */
function boundQueries(connection: RawConnection, timeoutMs: () => number | undefined): void {
  const query = connection.query.bind(connection);
  connection.query = (sqlText: unknown, values?: unknown, callback?: (error: unknown, ...rest: unknown[]) => void) => {
    const ms = timeoutMs();
    if (ms === undefined || typeof sqlText !== "string") return query(sqlText, values, callback);
    const timedOut = (error: unknown) => (error as { code?: string } | null)?.code === "PROTOCOL_SEQUENCE_TIMEOUT";
    if (callback === undefined) {
      const command = query({ sql: sqlText, timeout: ms }, values);
      command.once("error", (error) => timedOut(error) && connection.destroy());
      return command;
    }
    return query({ sql: sqlText, timeout: ms }, values, (error, ...rest) => {
      if (timedOut(error)) connection.destroy();
      callback(error, ...rest);
    });
  };
}

function wrap(db: Kysely<Database>, dialect: SqlDialectName): SqlDatabase {
  return {
    db,
    dialect,
    unbounded: (work) => work(),
    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    close: () => db.destroy(),
  };
}

/** True when a driver error is a unique-key violation (MySQL 1062, SQLite constraint). */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { errno?: number; code?: string; errcode?: number; message?: string } | null;
  if (!e) return false;
  if (e.errno === 1062 || e.code === "ER_DUP_ENTRY") return true;
  // node:sqlite reports SQLITE_CONSTRAINT_UNIQUE (2067) / PRIMARYKEY (1555) as errcode.
  return e.errcode === 2067 || e.errcode === 1555 || /UNIQUE constraint failed/.test(e.message ?? "");
}
