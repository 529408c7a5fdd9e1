// Opens the durable databases a Config names — the main database and the key
// store's — and migrates them. The service (src/server/wiring.ts), its cluster
// primary (src/server/start.ts) and every operator command open them here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, type Config } from "../../config.ts";
import type { DurableStores } from "../../domain/ports/stores.ts";
import { openSqlDatabase, type SqlDatabase } from "./database.ts";
import { migrateKeyStore, moveKeysFromMainDatabase } from "./key-store.ts";
import { migrateToLatest } from "./migrations.ts";
import { createSqlStores } from "./stores.ts";

export type DurableConfig = Pick<Config, "mysqlUrl" | "keystoreMysqlUrl" | "mysqlTlsCaFile" | "dataDir" | "timeouts">;

export interface DurableDatabases {
  main: SqlDatabase;
  /** The key store's database: its own pool even when it is the main database. */
  keys: SqlDatabase;
  /** True when the key store is a database of its own (KEYSTORE_MYSQL_URL, or the embedded keys.sqlite). */
  separateKeyStore: boolean;
}

/** The embedded files, in DATA_DIR: the main data, and the key store (back them up apart). */
export const EMBEDDED_MAIN_FILE = "identity.sqlite";
export const EMBEDDED_KEYS_FILE = "keys.sqlite";

/** DATA_DIR ":memory:" keeps both embedded databases in memory, for the fast test tier (test/service/): nothing survives the process. */
export const IN_MEMORY = ":memory:";

export function openDurableDatabases(config: DurableConfig): DurableDatabases {
  const tlsCa = config.mysqlTlsCaFile ? readFileSync(config.mysqlTlsCaFile, "utf8") : undefined;
  if (!config.mysqlUrl) {
    const embedded = (file: string) => (config.dataDir === IN_MEMORY ? IN_MEMORY : join(config.dataDir, file));
    return {
      main: openSqlDatabase({ sqlitePath: embedded(EMBEDDED_MAIN_FILE) }),
      keys: openSqlDatabase({ sqlitePath: embedded(EMBEDDED_KEYS_FILE) }),
      separateKeyStore: true,
    };
  }
  // A server that drops packets must fail a call in bounded time, not hang it.
  const bounds = { connectTimeoutMs: config.timeouts.mysqlConnectMs, queryTimeoutMs: config.timeouts.mysqlQueryMs };
  return {
    main: openSqlDatabase({ mysqlUrl: config.mysqlUrl, tlsCa, ...bounds }),
    // Key reads are single-row primary-key lookups: a small pool is plenty.
    keys: openSqlDatabase({ mysqlUrl: config.keystoreMysqlUrl ?? config.mysqlUrl, tlsCa, poolSize: 5, ...bounds }),
    separateKeyStore: config.keystoreMysqlUrl !== undefined,
  };
}

/**
 * Migrates both databases; when the key store is a database of its own, moves
 * keys the main database still holds into it (written before it was). Idempotent.
 * Returns what it did, for the log.
 */
export async function migrateDurable(databases: DurableDatabases): Promise<{ applied: string[]; movedKeys: number }> {
  // Migrations run before anything serves, unbounded: rebuilding a large table may take minutes.
  return databases.main.unbounded(() =>
    databases.keys.unbounded(async () => {
      const applied = [...(await migrateToLatest(databases.main.db)), ...(await migrateKeyStore(databases.keys))];
      const movedKeys = databases.separateKeyStore ? await moveKeysFromMainDatabase(databases.main, databases.keys) : 0;
      return { applied, movedKeys };
    }),
  );
}

/** Opens (and, unless `migrate` is false, migrates) the durable stores a Config names. */
export async function openDurableStores(
  config: DurableConfig,
  options: { migrate?: boolean } = {},
): Promise<{ stores: DurableStores; migrated: { applied: string[]; movedKeys: number } }> {
  const databases = openDurableDatabases(config);
  try {
    const migrated = options.migrate === false ? { applied: [], movedKeys: 0 } : await migrateDurable(databases);
    return { stores: createSqlStores(databases.main, databases.keys), migrated };
  } catch (error) {
    await Promise.all([databases.main.close(), databases.keys.close()]);
    throw error;
  }
}

/** MySQL errors that retrying cannot fix: the URL names a user, password or database the server refuses. */
const CONFIGURATION_ERRORS: Record<string, string> = {
  ER_ACCESS_DENIED_ERROR: "is refused by the server: access denied (wrong user or password)",
  ER_DBACCESS_DENIED_ERROR: "is refused by the server: the user may not use this database",
  ER_BAD_DB_ERROR: "names a database that does not exist",
  ER_NOT_SUPPORTED_AUTH_MODE: "is refused by the server: authentication method not supported",
};

/**
 * Opening the durable stores failed: a ConfigError naming the variable when
 * retrying cannot help (bad credentials, unknown database), else undefined (the
 * server is unreachable or starting: retry).
 */
export function configurationErrorOf(config: DurableConfig, error: unknown): ConfigError | undefined {
  if (!config.mysqlUrl) return undefined;
  const e = error as { code?: string; sqlMessage?: string } | null;
  const problem = CONFIGURATION_ERRORS[e?.code ?? ""];
  if (!problem) return undefined;
  // The refused database is named in the server's message; say which URL names it.
  const keystore = config.keystoreMysqlUrl && e?.sqlMessage?.includes(`'${new URL(config.keystoreMysqlUrl).pathname.slice(1)}'`);
  return new ConfigError(keystore ? "KEYSTORE_MYSQL_URL" : "MYSQL_URL", `${problem} (${e?.code})`);
}
