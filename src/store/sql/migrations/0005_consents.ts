// 0005: consent decisions. One row per decision, never updated or deleted while
// the account lives (erasure deletes them with it): the history is the record a
// controller must be able to show (GDPR art. 7(1)). The current state of a
// purpose is its newest row. Nothing here is a secret or identifies a person on
// its own: purposes, policy versions, a flag, a time and the client's user agent.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const consents: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("consents")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("purpose", "varchar(64)", (c) => c.notNull())
      .addColumn("version", "varchar(64)", (c) => c.notNull())
      .addColumn("granted", "smallint", (c) => c.notNull())
      .addColumn("client", "varchar(255)", (c) => c.notNull())
      .addColumn("recorded_at", "bigint", (c) => c.notNull())
      .execute();
    // History newest first, paged by (recorded_at, id); the current state per purpose reads the same range.
    await ignoreExistingIndex(db.schema.createIndex("consents_account_recorded").on("consents").columns(["account_id", "recorded_at", "id"]).execute());
  },
};
