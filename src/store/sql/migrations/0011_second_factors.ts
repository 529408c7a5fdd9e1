// 0011: second factors (TOTP) and recovery codes. A factor's secret is sealed
// under the account's data key (erasure destroys the key first, then the rows);
// recovery codes are kept only as keyed hashes (HMAC with the blind-index key),
// single-use through used_at. last_used_step makes each TOTP code usable once.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const secondFactors: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("second_factors")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("kind", "smallint", (c) => c.notNull())
      .addColumn("secret", "varchar(512)", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("confirmed_at", "bigint")
      .addColumn("last_used_step", "bigint")
      .addColumn("last_used_at", "bigint")
      .execute();
    await ignoreExistingIndex(db.schema.createIndex("second_factors_account").on("second_factors").columns(["account_id", "created_at"]).execute());
    await db.schema
      .createTable("recovery_codes")
      .ifNotExists()
      .addColumn("account_id", "varchar(36)", (c) => c.notNull())
      .addColumn("code_hash", "varchar(64)", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("used_at", "bigint")
      .addPrimaryKeyConstraint("recovery_codes_pk", ["account_id", "code_hash"])
      .execute();
  },
};
