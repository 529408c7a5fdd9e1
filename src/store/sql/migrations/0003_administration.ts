// 0003: what administration needs — service API keys (stored by the hash of
// their secret), a version on tenants so concurrent setting updates never lose
// one another, and an index to find accounts by role (super admins, role filters).
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const administration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("api_keys")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("name", "varchar(200)", (c) => c.notNull())
      // hashSecret (SHA-256, hex) of the secret; the secret itself is never stored.
      .addColumn("secret_hash", "varchar(64)", (c) => c.notNull().unique())
      // Comma-separated permissions, e.g. "sessions.validate,users.read".
      .addColumn("permissions", "varchar(255)", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("revoked_at", "bigint")
      // Who created it, as the audit trail names actors ("account:<id>", "system").
      .addColumn("created_by", "varchar(100)", (c) => c.notNull())
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("api_keys_tenant_created").on("api_keys").columns(["tenant_id", "created_at", "id"]).execute());

    // MySQL runs DDL outside transactions: a rerun after a partial failure must not trip on the column.
    const tenants = (await db.introspection.getTables()).find((t) => t.name === "tenants");
    if (!tenants?.columns.some((c) => c.name === "version")) {
      await db.schema
        .alterTable("tenants")
        .addColumn("version", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
    }

    await ignoreExistingIndex(
      db.schema.createIndex("accounts_tenant_role_created").on("accounts").columns(["tenant_id", "role", "created_at", "id"]).execute(),
    );
  },
};
