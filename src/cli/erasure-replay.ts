// `npm run erasure:replay`: re-applies every erasure of the erasure ledger to
// the main database. Run it after restoring the main database from a backup,
// before the service serves traffic: a backup taken before an erasure holds the
// erased person's rows again (unreadable: their key is gone from the key store,
// which is not restored with it), and this deletes them. The service also runs
// it on start (src/server/durable.ts); it is idempotent.
//
// Reads MYSQL_URL / KEYSTORE_MYSQL_URL (or the embedded files in DATA_DIR);
// applies pending migrations first (an old backup may predate some). Prints
// progress per batch. Exit status: 0 done, 1 failed, 78 bad configuration.
import { ConfigError, loadConfig } from "../config.ts";
import { replayErasures } from "../domain/erasure.ts";
import { openDurableStores } from "../store/sql/open.ts";

let code = 0;
try {
  const config = loadConfig();
  const { stores, migrated } = await openDurableStores(config);
  try {
    if (migrated.applied.length > 0) process.stdout.write(`applied migrations: ${migrated.applied.join(", ")}\n`);
    const result = await replayErasures(stores, (p) =>
      process.stdout.write(`checked ${p.checked} ledger entries; deleted the rows of ${p.erased} erased accounts\n`),
    );
    process.stdout.write(
      result.erased > 0
        ? `done: ${result.erased} of ${result.checked} erased accounts had rows in the main database again; they are deleted\n`
        : `done: none of the ${result.checked} erased accounts has rows in the main database\n`,
    );
  } finally {
    await stores.close();
  }
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError || error instanceof Error ? error.message : String(error)}\n`);
  code = error instanceof ConfigError ? 78 : 1;
}
process.exit(code);
