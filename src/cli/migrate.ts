// `npm run migrate`: applies pending migrations to the configured database
// (MYSQL_URL, or the embedded SQLite file) and exits. The service also runs
// them on start; both are idempotent.
import { join } from "node:path";
import { ConfigError, loadConfig } from "../config.ts";
import { openSqlDatabase } from "../store/sql/database.ts";
import { migrateToLatest } from "../store/sql/migrations.ts";

try {
  const config = loadConfig();
  const database = openSqlDatabase({ mysqlUrl: config.mysqlUrl, sqlitePath: join(config.dataDir, "identity.sqlite") });
  try {
    const applied = await migrateToLatest(database.db);
    process.stdout.write(applied.length > 0 ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
  } finally {
    await database.close();
  }
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
}
