// 0006: an index for ListUsers' plan filter, so a page of a tenant's users on
// one plan is an index range in (created_at, id) order like the other filters
// (tenant: accounts_tenant_created, role: accounts_tenant_role_created, state:
// accounts_tenant_state_created — InnoDB appends the primary key id to it).
import { ignoreExistingIndex } from "./support.ts";
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const userListing: Migration = {
  async up(db: Kysely<unknown>) {
    await ignoreExistingIndex(
      db.schema.createIndex("accounts_tenant_plan_created").on("accounts").columns(["tenant_id", "plan", "created_at", "id"]).execute(),
    );
  },
};
