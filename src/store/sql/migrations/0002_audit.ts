// 0002: the audit trail. One hash chain per tenant: `audit_heads` holds each
// chain's last sequence and hash (the row every append locks), `audit_events`
// the events, keyed by (tenant, sequence) so the chain order is explicit and a
// missing event shows as a gap. Secondary indexes serve ListAuditEvents' filters
// with keyset pagination by sequence.
import { ignoreExistingIndex } from "./support.ts";
import { MysqlAdapter, sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const audit: Migration = {
  async up(db: Kysely<unknown>) {
    // Hashes are computed over the exact text stored: on MySQL pin a charset that
    // round-trips every code point and compares byte for byte, whatever the
    // database's default is.
    const exactText = db.getExecutor().adapter instanceof MysqlAdapter ? sql`character set utf8mb4 collate utf8mb4_bin` : sql``;

    await db.schema
      .createTable("audit_heads")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.primaryKey())
      .addColumn("sequence", "bigint", (c) => c.notNull())
      .addColumn("hash", "varchar(64)", (c) => c.notNull())
      .modifyEnd(exactText)
      .execute();

    await db.schema
      .createTable("audit_events")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("sequence", "bigint", (c) => c.notNull())
      .addColumn("at", "bigint", (c) => c.notNull())
      .addColumn("actor", "varchar(128)", (c) => c.notNull())
      .addColumn("action", "varchar(64)", (c) => c.notNull())
      .addColumn("target", "varchar(128)", (c) => c.notNull())
      .addColumn("reason", "varchar(1000)", (c) => c.notNull())
      .addColumn("ip", "varchar(64)", (c) => c.notNull())
      .addColumn("user_agent", "varchar(512)", (c) => c.notNull())
      .addColumn("outcome", "varchar(64)", (c) => c.notNull())
      .addColumn("prev_hash", "varchar(64)", (c) => c.notNull())
      .addColumn("hash", "varchar(64)", (c) => c.notNull())
      .addPrimaryKeyConstraint("audit_events_pk", ["tenant_id", "sequence"])
      .modifyEnd(exactText)
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("audit_events_actor").on("audit_events").columns(["tenant_id", "actor", "sequence"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("audit_events_target").on("audit_events").columns(["tenant_id", "target", "sequence"]).execute());
    await ignoreExistingIndex(db.schema.createIndex("audit_events_action").on("audit_events").columns(["tenant_id", "action", "sequence"]).execute());
  },
};
