// A freshly migrated durable store on one backend: embedded SQLite in memory
// (main database and key store apart, as keys.sqlite is in production), or a
// new MySQL/MariaDB database dropped on close, with the key store in it through
// its own pool (the default) or in a second database (KEYSTORE_MYSQL_URL).
import type { UntypedDatabase } from "../../src/store/sql/schema.ts";
import type { DurableStores } from "../../src/domain/ports/stores.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { migrateDurable } from "../../src/store/sql/open.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";
import { createMysqlDatabase, type BackendName } from "./backends.ts";

export interface DurableHarness {
  stores: DurableStores;
  /** The same database seen without the stores, to check what was (and was not) written. */
  raw: UntypedDatabase;
  /** The key store's database, seen without the stores (the main one's `raw` when they share it). */
  rawKeys: UntypedDatabase;
  database: SqlDatabase;
  keyDatabase: SqlDatabase;
  close(): Promise<void>;
}

export async function openDurable(backend: BackendName, options: { separateKeyDatabase?: boolean } = {}): Promise<DurableHarness> {
  if (backend === "embedded") {
    const database = openSqlDatabase({ sqlitePath: ":memory:" });
    const keyDatabase = openSqlDatabase({ sqlitePath: ":memory:" });
    await migrateDurable({ main: database, keys: keyDatabase, separateKeyStore: true });
    const stores = createSqlStores(database, keyDatabase);
    return { stores, raw: database.db, rawKeys: keyDatabase.db, database, keyDatabase, close: () => stores.close() };
  }
  const main = await createMysqlDatabase();
  const keys = options.separateKeyDatabase ? await createMysqlDatabase() : undefined;
  const database = openSqlDatabase({ mysqlUrl: main.url });
  const keyDatabase = openSqlDatabase({ mysqlUrl: keys?.url ?? main.url, poolSize: 5 });
  const stores = createSqlStores(database, keyDatabase);
  const close = async () => {
    await stores.close();
    await main.drop();
    await keys?.drop();
  };
  try {
    await migrateDurable({ main: database, keys: keyDatabase, separateKeyStore: keys !== undefined });
  } catch (error) {
    await close();
    throw error;
  }
  return { stores, raw: database.db, rawKeys: keyDatabase.db, database, keyDatabase, close };
}
