// `npm run migrate`: applies pending migrations to the configured main database
// (MYSQL_URL, or the embedded SQLite file) and key store (KEYSTORE_MYSQL_URL,
// the main database, or keys.sqlite), and exits. The service also runs them on
// start; both are idempotent.
import { ConfigError, loadConfig } from "../config.ts";
import { openDurableStores } from "../store/sql/open.ts";

try {
  const config = loadConfig();
  const { stores, migrated } = await openDurableStores(config);
  await stores.close();
  process.stdout.write(migrated.applied.length > 0 ? `applied: ${migrated.applied.join(", ")}\n` : "database is up to date\n");
  if (migrated.movedKeys > 0) process.stdout.write(`moved ${migrated.movedKeys} wrapped data keys into the key store\n`);
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(1);
}
