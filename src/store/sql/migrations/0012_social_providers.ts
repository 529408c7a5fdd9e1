// 0012: the tenants' social sign-in providers (Google, Apple, OpenID Connect).
// Their secrets (client secret, Apple's private key) are sealed under a data
// key of the provider's own, wrapped by the KEK like an account's; nothing
// secret is readable in a dump.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const socialProviders: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("social_providers")
      .ifNotExists()
      .addColumn("id", "varchar(36)", (c) => c.primaryKey())
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("kind", "integer", (c) => c.notNull())
      .addColumn("name", "varchar(200)", (c) => c.notNull())
      .addColumn("issuer", "varchar(500)", (c) => c.notNull())
      .addColumn("client_id", "varchar(500)", (c) => c.notNull())
      // JSON arrays.
      .addColumn("scopes", "varchar(2000)", (c) => c.notNull())
      .addColumn("redirect_uris", "text", (c) => c.notNull())
      .addColumn("apple_team_id", "varchar(20)", (c) => c.notNull())
      .addColumn("apple_key_id", "varchar(20)", (c) => c.notNull())
      // The provider's data key, wrapped by the KEK, and its secrets (JSON) sealed under it.
      .addColumn("wrapped_key", "varchar(255)", (c) => c.notNull())
      .addColumn("secrets", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    await ignoreExistingIndex(
      db.schema.createIndex("social_providers_tenant_created").on("social_providers").columns(["tenant_id", "created_at", "id"]).execute(),
    );
  },
};
