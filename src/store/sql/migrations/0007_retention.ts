// 0007: what retention needs — an index to find a tenant's delivered (or
// abandoned) messages by age without scanning the outbox, and the audit chain
// checkpoints: when retention deletes the oldest events of a tenant's chain (a
// prefix), the last deleted event's sequence and hash are kept here, and
// verification starts from them instead of the genesis.
import { ignoreExistingIndex } from "./support.ts";
import { MysqlAdapter, sql, type Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const retention: Migration = {
  async up(db: Kysely<unknown>) {
    await ignoreExistingIndex(db.schema.createIndex("outbox_tenant_status_created").on("outbox").columns(["tenant_id", "status", "created_at"]).execute());
    // Hashes compare byte for byte, as in audit_heads (0002).
    const exactText = db.getExecutor().adapter instanceof MysqlAdapter ? sql`character set utf8mb4 collate utf8mb4_bin` : sql``;
    await db.schema
      .createTable("audit_checkpoints")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.primaryKey())
      .addColumn("sequence", "bigint", (c) => c.notNull())
      .addColumn("hash", "varchar(64)", (c) => c.notNull())
      .modifyEnd(exactText)
      .execute();
  },
};
