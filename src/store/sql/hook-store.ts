// Blocking hooks' settings over Kysely (MySQL/MariaDB/TiDB and SQLite).
import type { Kysely, Selectable } from "kysely";
import type { BlockingHookStore, HookPoint, StoredBlockingHook } from "../../domain/ports/hooks.ts";
import type { BlockingHooksTable, Database } from "./schema.ts";

function toHook(row: Selectable<BlockingHooksTable>): StoredBlockingHook {
  return {
    tenantId: row.tenant_id,
    point: row.point as HookPoint,
    url: row.url,
    secretSealed: row.secret,
    timeoutMs: Number(row.timeout_ms),
    failOpen: Number(row.fail_open) === 1,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export function createSqlHookStore(db: Kysely<Database>): BlockingHookStore {
  return {
    async list(tenantId) {
      return (await db.selectFrom("blocking_hooks").selectAll().where("tenant_id", "=", tenantId).orderBy("point").execute()).map(toHook);
    },

    async put(hook) {
      const row = {
        url: hook.url,
        secret: hook.secretSealed,
        timeout_ms: hook.timeoutMs,
        fail_open: hook.failOpen ? 1 : 0,
        updated_at: hook.updatedAt,
      };
      // Replace in place, else insert: two statements, so both dialects share them.
      await db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable("blocking_hooks")
          .set(row)
          .where("tenant_id", "=", hook.tenantId)
          .where("point", "=", hook.point)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 1) return;
        await trx
          .insertInto("blocking_hooks")
          .values({ ...row, tenant_id: hook.tenantId, point: hook.point, created_at: hook.createdAt })
          .execute();
      });
    },

    async delete(tenantId, point) {
      const result = await db.deleteFrom("blocking_hooks").where("tenant_id", "=", tenantId).where("point", "=", point).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
  };
}
