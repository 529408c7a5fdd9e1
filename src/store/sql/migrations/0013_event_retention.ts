// 0013: event retention. Retention deletes a tenant's oldest delivered events as
// a prefix of its stream; `purged_through` is the highest number deleted, so a
// pull consumer whose cursor is older is told it lost events instead of silently
// skipping them (src/domain/webhooks.ts follow).
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const eventRetention: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("event_watermarks")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.primaryKey())
      .addColumn("purged_through", "bigint", (c) => c.notNull())
      .execute();
  },
};
