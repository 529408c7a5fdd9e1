// A tenant's message templates over Kysely (MySQL/MariaDB/TiDB and SQLite).
import type { Kysely, Selectable } from "kysely";
import type { StoredTemplate, TemplateStore } from "../../domain/ports/templates.ts";
import type { Database, MessageTemplatesTable } from "./schema.ts";

function toTemplate(row: Selectable<MessageTemplatesTable>): StoredTemplate {
  return {
    tenantId: row.tenant_id,
    kind: row.kind,
    locale: row.locale,
    subject: row.subject,
    textBody: row.text_body,
    htmlBody: row.html_body,
    updatedAt: Number(row.updated_at),
  };
}

export function createSqlTemplateStore(db: Kysely<Database>): TemplateStore {
  const key = (tenantId: string, kind: string, locale: string) =>
    db.selectFrom("message_templates").selectAll().where("tenant_id", "=", tenantId).where("kind", "=", kind).where("locale", "=", locale);
  return {
    async get(tenantId, kind, locale) {
      const row = await key(tenantId, kind, locale).executeTakeFirst();
      return row && toTemplate(row);
    },

    async list(tenantId) {
      const rows = await db.selectFrom("message_templates").selectAll().where("tenant_id", "=", tenantId).orderBy("kind").orderBy("locale").execute();
      return rows.map(toTemplate);
    },

    async put(template) {
      const values = { subject: template.subject, text_body: template.textBody, html_body: template.htmlBody, updated_at: template.updatedAt };
      // Replace in place, else insert: two statements both dialects share.
      await db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable("message_templates")
          .set(values)
          .where("tenant_id", "=", template.tenantId)
          .where("kind", "=", template.kind)
          .where("locale", "=", template.locale)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 1) return;
        await trx
          .insertInto("message_templates")
          .values({ ...values, tenant_id: template.tenantId, kind: template.kind, locale: template.locale })
          .execute();
      });
    },

    async delete(tenantId, kind, locale) {
      const result = await db
        .deleteFrom("message_templates")
        .where("tenant_id", "=", tenantId)
        .where("kind", "=", kind)
        .where("locale", "=", locale)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
  };
}
