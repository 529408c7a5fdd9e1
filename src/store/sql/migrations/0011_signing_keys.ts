// 0011: the keys that sign access tokens (SessionService/IssueAccessToken). A
// handful of rows: the current key, the next one (published before it signs),
// and retired ones kept until the last token they signed has expired. The
// private half is sealed under the KEK; the public half is the JWKS entry.
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const signingKeys: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("signing_keys")
      .ifNotExists()
      .addColumn("kid", "varchar(64)", (c) => c.primaryKey())
      .addColumn("algorithm", "varchar(16)", (c) => c.notNull())
      .addColumn("public_jwk", "text", (c) => c.notNull())
      .addColumn("sealed_private_key", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("active_from", "bigint", (c) => c.notNull())
      .addColumn("retire_at", "bigint")
      .execute();
  },
};
