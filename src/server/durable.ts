// The durable stores as a serving process gets them: migrated, keys moved into
// a separate key store, and the erasure ledger replayed — before anything
// serves, so a main database restored from an old backup never answers for an
// erased account. Cheap when nothing was restored: one indexed IN query per
// per-account table for each 500 ledger entries.
import type { Config } from "../config.ts";
import { replayErasures } from "../domain/erasure.ts";
import type { DurableStores } from "../domain/ports/stores.ts";
import { openDurableStores } from "../store/sql/open.ts";
import type { Logger } from "./logger.ts";

/** `prepare` false: open only (a cluster's workers, once the primary prepared the databases). */
export async function openServingDurable(config: Config, log: Logger, options: { prepare: boolean }): Promise<DurableStores> {
  const { stores, migrated } = await openDurableStores(config, { migrate: options.prepare });
  if (migrated.applied.length > 0) log.info({ applied: migrated.applied }, "database migrated");
  if (migrated.movedKeys > 0) log.info({ moved: migrated.movedKeys }, "moved wrapped data keys from the main database into the key store");
  if (!options.prepare) return stores;
  try {
    const replay = await replayErasures(stores);
    if (replay.erased > 0) log.warn({ ...replay }, "erasure ledger replayed: deleted the rows of erased accounts that had come back (a restored backup?)");
  } catch (error) {
    await stores.close();
    throw error;
  }
  return stores;
}
