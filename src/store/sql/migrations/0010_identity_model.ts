// 0010: the identity model beyond email (docs/architecture.md, "Identities").
// An identity row already holds (kind, sealed value, blind-index lookup unique
// per tenant and kind, verified_at, created_at) since 0001, and every account
// created since then got its email identity in the same transaction as the
// account (sign-up, invitation, bootstrap): there are no accounts without an
// identity row to copy, and the account's primary email stays where it was
// (the sealed profile), so nothing existing changes. Added here:
// - issuer: the issuer URL of an external (OIDC) identity; null for the others.
//   Not personal (it names the provider, e.g. https://accounts.google.com).
// - profile: a small JSON profile per identity (Webcom's identity profile),
//   sealed under the account's data key like the value; null when never set.
// - identities_kind_created: the retention job's range over a tenant's guest
//   identities by age (never a scan of the tenant's identities).
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const identityModel: Migration = {
  async up(db: Kysely<unknown>) {
    // MySQL runs DDL outside transactions: a rerun after a partial failure must not trip on a column.
    const columns = new Set((await db.introspection.getTables()).find((t) => t.name === "identities")?.columns.map((c) => c.name));
    if (!columns.has("issuer")) await db.schema.alterTable("identities").addColumn("issuer", "varchar(255)").execute();
    if (!columns.has("profile")) await db.schema.alterTable("identities").addColumn("profile", "text").execute();
    await ignoreExistingIndex(db.schema.createIndex("identities_kind_created").on("identities").columns(["tenant_id", "kind", "created_at"]).execute());
  },
};
