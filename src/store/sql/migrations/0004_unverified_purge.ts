// 0004: an index for the purge of expired unverified sign-ups, so finding them
// reads a range of a tenant's pending accounts instead of scanning all of them.
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const unverifiedPurge: Migration = {
  async up(db: Kysely<unknown>) {
    await ignoreExistingIndex(db.schema.createIndex("accounts_tenant_state_created").on("accounts").columns(["tenant_id", "state", "created_at"]).execute());
  },
};
