// A freshly migrated durable store on one backend: embedded SQLite in memory,
// or a new MySQL/MariaDB database dropped on close.
import type { Kysely } from "kysely";
import type { DurableStores } from "../../src/domain/ports.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";
import { createMysqlDatabase, type BackendName } from "./backends.ts";

export interface DurableHarness {
  stores: DurableStores;
  /** The same database seen without the stores, to check what was (and was not) written. */
  raw: Kysely<any>;
  database: SqlDatabase;
  close(): Promise<void>;
}

export async function openDurable(backend: BackendName): Promise<DurableHarness> {
  if (backend === "embedded") {
    const database = openSqlDatabase({ sqlitePath: ":memory:" });
    await migrateToLatest(database.db);
    return { stores: createSqlStores(database), raw: database.db, database, close: () => database.close() };
  }
  const { url, drop } = await createMysqlDatabase();
  const database = openSqlDatabase({ mysqlUrl: url });
  try {
    await migrateToLatest(database.db);
  } catch (error) {
    await database.close();
    await drop();
    throw error;
  }
  return {
    stores: createSqlStores(database),
    raw: database.db,
    database,
    async close() {
      await database.close();
      await drop();
    },
  };
}
