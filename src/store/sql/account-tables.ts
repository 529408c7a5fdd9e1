// THE list of main-database tables that hold rows about one account. Erasure,
// the purge of unverified sign-ups and the erasure-ledger replay all delete
// through it, so a new per-account table is erased once it is listed here —
// and test/unit/account-tables.test.ts fails until every table of a migrated
// database is either listed here or in SHARED_TABLES.
import type { Kysely, Transaction } from "kysely";
import type { Database, UntypedDatabase, UntypedTransaction } from "./schema.ts";

/** Per-account tables and the column holding the account id (which leads an index of the table). */
export const ACCOUNT_TABLES = [
  { table: "identities", column: "account_id" },
  { table: "outbox", column: "account_id" },
  { table: "consents", column: "account_id" },
  { table: "second_factors", column: "account_id" },
  { table: "recovery_codes", column: "account_id" },
  { table: "subscription_changes", column: "account_id" },
  // Events about the person and their webhook deliveries (erasure then writes account.deleted).
  { table: "webhook_deliveries", column: "account_id" },
  { table: "events", column: "account_id" },
  // Wrapped keys as the main database held them before the key store could be a
  // database of its own (and still does when KEYSTORE_MYSQL_URL is unset).
  { table: "account_keys", column: "account_id" },
  { table: "accounts", column: "id" },
] as const;

/**
 * Tables with no row about one person, or (audit_events) whose rows name accounts
 * only by id and are kept by design: the audit trail is hash-chained and pruned
 * only by its retention (src/domain/retention.ts).
 */
export const SHARED_TABLES = [
  "tenants",
  "api_keys",
  "audit_heads",
  "audit_events",
  "audit_checkpoints",
  "erasure_ledger",
  // Ids only, deleted once carried out; a revocation must outlive the erasure that queued it.
  "pending_revocations",
  // The service's own access-token signing keys: nothing about anyone.
  "signing_keys",
  // A tenant's sign-in providers: no personal data (their secrets are the tenant's, sealed).
  "social_providers",
  // A tenant's endpoints: no person in them.
  "webhooks",
  "blocking_hooks",
  "message_templates",
  // How far retention deleted each tenant's event stream: a number per tenant.
  "event_watermarks",
  "kysely_migration",
  "kysely_migration_lock",
  "keystore_migration",
  "keystore_migration_lock",
] as const;

type Untyped = UntypedDatabase | UntypedTransaction;

/** Deletes every row about the account, table by table (run it inside a transaction). True when a row went. */
export async function deleteAccountRows(trx: Transaction<Database>, accountId: string): Promise<boolean> {
  const db = trx as Untyped;
  let deleted = 0;
  for (const { table, column } of ACCOUNT_TABLES) {
    const result = await db.deleteFrom(table).where(column, "=", accountId).executeTakeFirst();
    deleted += Number(result.numDeletedRows);
  }
  return deleted > 0;
}

/** Which of `accountIds` have a row in any per-account table: one indexed IN query per table. */
export async function presentAccountIds(database: Kysely<Database>, accountIds: string[]): Promise<string[]> {
  if (accountIds.length === 0) return [];
  const db = database as Untyped;
  const present = new Set<string>();
  for (const { table, column } of ACCOUNT_TABLES) {
    const rows = await db.selectFrom(table).select(`${column} as id`).distinct().where(column, "in", accountIds).execute();
    for (const row of rows as Array<{ id: string }>) present.add(row.id);
  }
  return [...present];
}
