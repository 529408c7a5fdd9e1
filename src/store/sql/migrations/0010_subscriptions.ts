// 0010: subscriptions that act on their dates (src/domain/subscriptions.ts).
// Accounts gain the subscription's status, whether it renews, and the period
// end a renewal reminder was last sent for (once per period); an index on
// (tenant_id, plan_expires_at) lets the subscription job find what is due as
// an index range, and one on (tenant_id, plan_status, created_at, id) lets
// ListUsers filter by status like its other filters. subscription_changes
// records the idempotency keys of SetSubscription calls (hashed), so a retried
// billing webhook applies once. Also (src/domain/assisted-recovery.ts): until
// when an admin-issued temporary password may be used.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

/** Adds a column unless a half-applied earlier run added it (ALTER is not transactional on MySQL). */
async function ignoreExistingColumn(creation: Promise<unknown>): Promise<void> {
  try {
    await creation;
  } catch (error) {
    const e = error as { errno?: number; message?: string };
    if (e.errno === 1060 || /duplicate column/i.test(e.message ?? "")) return; // ER_DUP_FIELDNAME / SQLite
    throw error;
  }
}

export const subscriptions: Migration = {
  async up(db: Kysely<unknown>) {
    await ignoreExistingColumn(
      db.schema
        .alterTable("accounts")
        .addColumn("plan_status", "integer", (c) => c.notNull().defaultTo(0))
        .execute(),
    );
    await ignoreExistingColumn(
      db.schema
        .alterTable("accounts")
        .addColumn("plan_renews", "integer", (c) => c.notNull().defaultTo(0))
        .execute(),
    );
    await ignoreExistingColumn(db.schema.alterTable("accounts").addColumn("plan_reminded_for", "bigint").execute());
    // Customer service: until when an admin-issued temporary password may be used (it must be changed at sign-in); null: none.
    await ignoreExistingColumn(db.schema.alterTable("accounts").addColumn("temporary_password_until", "bigint").execute());
    await ignoreExistingIndex(db.schema.createIndex("accounts_tenant_plan_expires").on("accounts").columns(["tenant_id", "plan_expires_at", "id"]).execute());
    await ignoreExistingIndex(
      db.schema.createIndex("accounts_tenant_plan_status_created").on("accounts").columns(["tenant_id", "plan_status", "created_at", "id"]).execute(),
    );
    await db.schema
      .createTable("subscription_changes")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("key_hash", "varchar(64)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("subscription_changes_pk", ["tenant_id", "key_hash"])
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("subscription_changes_account").on("subscription_changes").columns(["account_id"]).execute());
  },
};
