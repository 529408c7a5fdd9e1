// 0001: tenants, accounts with sealed profiles, wrapped data keys, identities
// with blind-index lookups, and the delivery outbox.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const foundation: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("tenants")
      .ifNotExists()
      .addColumn("id", "varchar(64)", (c) => c.primaryKey())
      .addColumn("name", "varchar(200)", (c) => c.notNull())
      .addColumn("settings", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();

    await db.schema
      .createTable("accounts")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("role", "smallint", (c) => c.notNull())
      .addColumn("state", "smallint", (c) => c.notNull())
      .addColumn("locale", "varchar(16)", (c) => c.notNull())
      .addColumn("email_verified", "smallint", (c) => c.notNull().defaultTo(0))
      .addColumn("profile", "text", (c) => c.notNull())
      .addColumn("password_hash", "varchar(255)")
      .addColumn("plan", "varchar(64)", (c) => c.notNull().defaultTo(""))
      .addColumn("plan_expires_at", "bigint")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    // Keyset pagination of a tenant's users by creation time.
    await ignoreExistingIndex(db.schema.createIndex("accounts_tenant_created").on("accounts").columns(["tenant_id", "created_at", "id"]).execute());

    await db.schema
      .createTable("account_keys")
      .ifNotExists()
      .addColumn("account_id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("wrapped_key", "varchar(255)", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();

    await db.schema
      .createTable("identities")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("kind", "smallint", (c) => c.notNull())
      .addColumn("lookup_hash", "varchar(64)", (c) => c.notNull())
      .addColumn("value", "text", (c) => c.notNull())
      .addColumn("verified_at", "bigint")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();
    // The uniqueness that makes concurrent sign-ups of one address yield one account.
    await ignoreExistingIndex(db.schema.createIndex("identities_lookup").unique().on("identities").columns(["tenant_id", "kind", "lookup_hash"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("identities_account").on("identities").column("account_id").execute());

    await db.schema
      .createTable("outbox")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("kind", "varchar(64)", (c) => c.notNull())
      .addColumn("status", "varchar(16)", (c) => c.notNull())
      .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
      .addColumn("locked_until", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("lock_owner", "varchar(64)")
      .addColumn("last_error", "varchar(500)")
      .addColumn("payload", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("sent_at", "bigint")
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("outbox_due").on("outbox").columns(["status", "next_attempt_at"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("outbox_account").on("outbox").column("account_id").execute());
  },
};
