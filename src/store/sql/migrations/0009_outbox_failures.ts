// 0009: what operators need to see and requeue failed messages — the class of
// the last failure (permanent or transient), when a message was given up on,
// when it was last queued (a requeue restarts its maximum age), and an index to
// page through failed messages per tenant, or across tenants, in id order.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const outboxFailures: Migration = {
  async up(db: Kysely<unknown>) {
    // MySQL runs DDL outside transactions: a rerun after a partial failure must not trip on a column.
    const columns = new Set((await db.introspection.getTables()).find((t) => t.name === "outbox")?.columns.map((c) => c.name));
    if (!columns.has("last_error_class")) await db.schema.alterTable("outbox").addColumn("last_error_class", "varchar(16)").execute();
    if (!columns.has("failed_at")) await db.schema.alterTable("outbox").addColumn("failed_at", "bigint").execute();
    if (!columns.has("queued_at")) await db.schema.alterTable("outbox").addColumn("queued_at", "bigint").execute();
    await ignoreExistingIndex(db.schema.createIndex("outbox_status_tenant_id").on("outbox").columns(["status", "tenant_id", "id"]).execute());
  },
};
