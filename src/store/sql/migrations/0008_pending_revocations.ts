// 0008: revocations a committed change still owes. A change that must end an
// account's sessions (role change, deactivation, erasure, password change or
// reset) writes a row here in its own transaction; the row is deleted once the
// sessions are gone from the session store (src/domain/revocations.ts). Until
// then every instance refuses those sessions, and a background loop retries.
// Rows name the account by id only (no personal data) and outlive its erasure.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const pendingRevocations: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("pending_revocations")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("reason", "varchar(32)", (c) => c.notNull())
      // The session to keep (the one that changed its password): a SHA-256, as the session store keys it.
      .addColumn("keep_token_hash", "varchar(64)")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("pending_revocations_account").on("pending_revocations").columns(["account_id", "created_at"]).execute());
  },
};
