// 0011: blocking hooks (src/domain/hooks.ts) — per tenant, at most one HTTP
// endpoint per point ("before_sign_up", "before_session"), its signing secret
// sealed under the key-encryption key, its timeout and whether it fails open.
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const blockingHooks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("blocking_hooks")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("point", "varchar(32)", (c) => c.notNull())
      .addColumn("url", "varchar(2048)", (c) => c.notNull())
      .addColumn("secret", "varchar(255)", (c) => c.notNull())
      .addColumn("timeout_ms", "integer", (c) => c.notNull())
      .addColumn("fail_open", "smallint", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("blocking_hooks_pk", ["tenant_id", "point"])
      .execute();
  },
};
