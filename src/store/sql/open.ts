// Opens the durable databases a Config names — the main database and the key
// store's — and migrates them. The service (src/server/wiring.ts), its cluster
// primary (src/server/start.ts) and every operator command open them here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../config.ts";
import type { DurableStores } from "../../domain/ports/stores.ts";
import { openSqlDatabase, type SqlDatabase } from "./database.ts";
import { migrateKeyStore, moveKeysFromMainDatabase } from "./key-store.ts";
import { migrateToLatest } from "./migrations.ts";
import { createSqlStores } from "./stores.ts";

export type DurableConfig = Pick<Config, "mysqlUrl" | "keystoreMysqlUrl" | "mysqlTlsCaFile" | "dataDir">;

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

export function openDurableDatabases(config: DurableConfig): DurableDatabases {
  const tlsCa = config.mysqlTlsCaFile ? readFileSync(config.mysqlTlsCaFile, "utf8") : undefined;
  if (!config.mysqlUrl) {
    return {
      main: openSqlDatabase({ sqlitePath: join(config.dataDir, EMBEDDED_MAIN_FILE) }),
      keys: openSqlDatabase({ sqlitePath: join(config.dataDir, EMBEDDED_KEYS_FILE) }),
      separateKeyStore: true,
    };
  }
  return {
    main: openSqlDatabase({ mysqlUrl: config.mysqlUrl, tlsCa }),
    // Key reads are single-row primary-key lookups: a small pool is plenty.
    keys: openSqlDatabase({ mysqlUrl: config.keystoreMysqlUrl ?? config.mysqlUrl, tlsCa, poolSize: 5 }),
    separateKeyStore: config.keystoreMysqlUrl !== undefined,
  };
}

/**
 * Migrates both databases; when the key store is a database of its own, moves
 * keys the main database still holds into it (written before it was). Idempotent.
 * Returns what it did, for the log.
 */
export async function migrateDurable(databases: DurableDatabases): Promise<{ applied: string[]; movedKeys: number }> {
  const applied = [...(await migrateToLatest(databases.main.db)), ...(await migrateKeyStore(databases.keys))];
  const movedKeys = databases.separateKeyStore ? await moveKeysFromMainDatabase(databases.main, databases.keys) : 0;
  return { applied, movedKeys };
}

/** Opens (and, unless `migrate` is false, migrates) the durable stores a Config names. */
export async function openDurableStores(config: DurableConfig, options: { migrate?: boolean } = {}): Promise<{ stores: DurableStores; migrated: { applied: string[]; movedKeys: number } }> {
  const databases = openDurableDatabases(config);
  try {
    const migrated = options.migrate === false ? { applied: [], movedKeys: 0 } : await migrateDurable(databases);
    return { stores: createSqlStores(databases.main, databases.keys), migrated };
  } catch (error) {
    await Promise.all([databases.main.close(), databases.keys.close()]);
    throw error;
  }
}
