// The key store over Kysely: wrapped data keys (`account_keys`) and the erasure
// ledger (`erasure_ledger`). It lives in the main database by default, or in a
// database of its own (KEYSTORE_MYSQL_URL; embedded: keys.sqlite) with its own
// migrations, so operators back it up on a different policy from the main data.
import type { Kysely } from "kysely";
import { Migrator, type Migration } from "kysely/migration";
import type { KeyStore, StoredDataKey } from "../../domain/ports/keys.ts";
import { isUniqueViolation, type SqlDatabase } from "./database.ts";
import type { AccountKeysTable } from "./schema.ts";

/** The erasure ledger: ids of erased accounts and when; no personal data. */
export interface ErasureLedgerTable {
  account_id: string;
  tenant_id: string;
  erased_at: number;
}

/** The key store's tables (account_keys, erasure_ledger), in whichever database holds it. */
export function keyStoreDb(database: SqlDatabase) {
  return database.db.withTables<{ erasure_ledger: ErasureLedgerTable }>();
}

// The key store's own migration history (its own tables, so it can share the
// main database or not). Forward-only; never edit a shipped one.
const keyStoreMigrations: Record<string, Migration> = {
  "0001_key_store": {
    async up(db: Kysely<unknown>) {
      // The same shape as the main database's 0001 (where the keys lived first): a no-op there.
      await db.schema
        .createTable("account_keys")
        .ifNotExists()
        .addColumn("account_id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
        .addColumn("wrapped_key", "varchar(255)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("erasure_ledger")
        .ifNotExists()
        .addColumn("account_id", "varchar(36)", (c) => c.primaryKey())
        .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
        .addColumn("erased_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};

/** Applies the key store's pending migrations; idempotent, safe with several instances (Kysely's migration lock). */
export async function migrateKeyStore(database: SqlDatabase): Promise<string[]> {
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: async () => keyStoreMigrations },
    migrationTableName: "keystore_migration",
    migrationLockTableName: "keystore_migration_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => `keystore:${r.migrationName}`);
}

const MOVE_BATCH = 500;

/**
 * Moves wrapped keys left in the main database's `account_keys` (written before
 * the key store had a database of its own) into the key store, in batches:
 * copied first, then deleted from the main database, so a crash in between
 * leaves a copy in both and the next run finishes. Keys of accounts in the
 * erasure ledger are never copied (a main database restored from an old backup
 * must not bring an erased key back). Returns how many it moved.
 */
export async function moveKeysFromMainDatabase(main: SqlDatabase, keys: SqlDatabase): Promise<number> {
  const target = keyStoreDb(keys);
  let moved = 0;
  for (;;) {
    const rows = await main.db.selectFrom("account_keys").selectAll().orderBy("account_id").limit(MOVE_BATCH).execute();
    if (rows.length === 0) return moved;
    const ids = rows.map((r) => r.account_id);
    const erased = new Set((await target.selectFrom("erasure_ledger").select("account_id").where("account_id", "in", ids).execute()).map((r) => r.account_id));
    const present = new Set((await target.selectFrom("account_keys").select("account_id").where("account_id", "in", ids).execute()).map((r) => r.account_id));
    const copy = rows.filter((r) => !erased.has(r.account_id) && !present.has(r.account_id));
    if (copy.length > 0) await target.insertInto("account_keys").values(copy).execute();
    await main.db.deleteFrom("account_keys").where("account_id", "in", ids).execute();
    moved += copy.length;
  }
}

export function createSqlKeyStore(database: SqlDatabase): KeyStore {
  const db = keyStoreDb(database);
  const toKey = (row: AccountKeysTable): StoredDataKey => ({
    accountId: row.account_id,
    tenantId: row.tenant_id,
    wrappedKey: row.wrapped_key,
    createdAt: Number(row.created_at),
  });
  return {
    async get(accountId) {
      const row = await db.selectFrom("account_keys").select("wrapped_key").where("account_id", "=", accountId).executeTakeFirst();
      return row?.wrapped_key;
    },

    async getMany(accountIds) {
      if (accountIds.length === 0) return new Map();
      const rows = await db.selectFrom("account_keys").select(["account_id", "wrapped_key"]).where("account_id", "in", accountIds).execute();
      return new Map(rows.map((r) => [r.account_id, r.wrapped_key]));
    },

    async put(key) {
      await db
        .insertInto("account_keys")
        .values({ account_id: key.accountId, tenant_id: key.tenantId, wrapped_key: key.wrappedKey, created_at: key.createdAt })
        .execute();
    },

    async delete(accountIds) {
      if (accountIds.length === 0) return;
      await db.deleteFrom("account_keys").where("account_id", "in", accountIds).execute();
    },

    async list({ afterAccountId, limit }) {
      const rows = await db.selectFrom("account_keys").selectAll().where("account_id", ">", afterAccountId).orderBy("account_id").limit(limit).execute();
      return rows.map(toKey);
    },

    async replace({ accountId, expected, wrappedKey }) {
      const result = await db
        .updateTable("account_keys")
        .set({ wrapped_key: wrappedKey })
        .where("account_id", "=", accountId)
        .where("wrapped_key", "=", expected)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async erase({ accountId, tenantId, erasedAt }) {
      await db.transaction().execute(async (trx) => {
        try {
          // The ledger row first: on MySQL its unique key serializes two erasures of one account.
          await trx.insertInto("erasure_ledger").values({ account_id: accountId, tenant_id: tenantId, erased_at: erasedAt }).execute();
        } catch (error) {
          if (!isUniqueViolation(error)) throw error; // erased before: keep the first record
        }
        await trx.deleteFrom("account_keys").where("account_id", "=", accountId).execute();
      });
    },

    async listErased({ afterAccountId, limit }) {
      const rows = await db.selectFrom("erasure_ledger").selectAll().where("account_id", ">", afterAccountId).orderBy("account_id").limit(limit).execute();
      return rows.map((r) => ({ accountId: r.account_id, tenantId: r.tenant_id, erasedAt: Number(r.erased_at) }));
    },

    ping: () => database.ping(),
  };
}
