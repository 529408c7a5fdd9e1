// 0010: domain events and webhooks (src/domain/events.ts). `events` holds what
// happened, by ids and kinds only, written in the transaction of the change;
// `sequence` is given after commit by the one dispatcher holding the lease, so
// numbers follow commit order and a reader resuming after a number misses
// nothing. `webhooks` are a tenant's endpoints (secret sealed under the KEK);
// `webhook_deliveries` one row per (webhook, event) — the unique pair is the
// deduplication — leased by delivery workers like the outbox.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const webhooks: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("events")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)")
      .addColumn("type", "varchar(64)", (c) => c.notNull())
      .addColumn("data", "varchar(2000)", (c) => c.notNull())
      .addColumn("sequence", "bigint")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();
    // Unnumbered events (sequence null) in id order, and the highest number: one index.
    await ignoreExistingIndex(db.schema.createIndex("events_sequence").on("events").columns(["sequence", "id"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("events_tenant_sequence").on("events").columns(["tenant_id", "sequence"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("events_account").on("events").columns(["account_id"]).execute());

    await db.schema
      .createTable("webhooks")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("url", "varchar(2048)", (c) => c.notNull())
      .addColumn("event_types", "varchar(2000)", (c) => c.notNull())
      .addColumn("secret", "varchar(255)", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("webhooks_tenant").on("webhooks").columns(["tenant_id", "id"]).execute());

    await db.schema
      .createTable("webhook_deliveries")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("webhook_id", "varchar(36)", (c) => c.notNull())
      .addColumn("event_id", "varchar(36)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)")
      .addColumn("sequence", "bigint", (c) => c.notNull())
      .addColumn("status", "varchar(16)", (c) => c.notNull())
      .addColumn("attempts", "integer", (c) => c.notNull())
      .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
      .addColumn("locked_until", "bigint", (c) => c.notNull())
      .addColumn("lock_owner", "varchar(128)")
      .addColumn("last_error", "varchar(500)")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("delivered_at", "bigint")
      .addColumn("queued_at", "bigint", (c) => c.notNull())
      .execute();
    await ignoreExistingIndex(
      db.schema.createIndex("webhook_deliveries_event").on("webhook_deliveries").columns(["webhook_id", "event_id"]).unique().execute(),
    );
    await ignoreExistingIndex(db.schema.createIndex("webhook_deliveries_due").on("webhook_deliveries").columns(["status", "next_attempt_at"]).execute());
    // In order per account: the earliest pending delivery of a (webhook, account).
    await ignoreExistingIndex(
      db.schema.createIndex("webhook_deliveries_order").on("webhook_deliveries").columns(["webhook_id", "account_id", "status", "sequence"]).execute(),
    );
    await ignoreExistingIndex(db.schema.createIndex("webhook_deliveries_webhook").on("webhook_deliveries").columns(["webhook_id", "sequence"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("webhook_deliveries_account").on("webhook_deliveries").columns(["account_id"]).execute());
  },
};
