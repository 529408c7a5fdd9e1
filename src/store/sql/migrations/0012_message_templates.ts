// 0012: a tenant's own message templates (src/domain/message-templates.ts),
// one per (kind, locale), checked when saved; the built-in ones stay the fallback.
import type { Kysely } from "kysely";
import type { Migration } from "kysely/migration";

export const messageTemplates: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("message_templates")
      .ifNotExists()
      .addColumn("tenant_id", "varchar(64)", (c) => c.notNull())
      .addColumn("kind", "varchar(64)", (c) => c.notNull())
      .addColumn("locale", "varchar(16)", (c) => c.notNull())
      .addColumn("subject", "varchar(255)", (c) => c.notNull())
      .addColumn("text_body", "text", (c) => c.notNull())
      .addColumn("html_body", "text", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("message_templates_pk", ["tenant_id", "kind", "locale"])
      .execute();
  },
};
