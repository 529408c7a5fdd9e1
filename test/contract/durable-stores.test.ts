// Runs the DurableStores contract against the embedded SQLite store and, when
// MariaDB/MySQL is reachable (always in CI), against a fresh MySQL database.
import { describeDurableStores } from "./durable-stores.contract.ts";
import { BACKENDS, createMysqlDatabase } from "../support/backends.ts";
import { openSqlDatabase } from "../../src/store/sql/database.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";

describeDurableStores("sqlite", async () => {
  const database = openSqlDatabase({ sqlitePath: ":memory:" });
  await migrateToLatest(database.db);
  return { stores: createSqlStores(database), raw: database.db, close: () => database.close() };
});

if (BACKENDS.includes("mysql")) {
  describeDurableStores("mysql", async () => {
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
      async close() {
        await database.close();
        await drop();
      },
    };
  });
}
