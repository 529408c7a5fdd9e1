// Service API keys over Kysely (MySQL/MariaDB/TiDB and SQLite). Keys are found
// by the hash of their secret (a unique index); listings never read the hash.
import type { Selectable } from "kysely";
import type { ApiKeyStore, StoredApiKey } from "../../domain/ports/api-keys.ts";
import type { Permission } from "../../domain/principal.ts";
import type { SqlDatabase } from "./database.ts";
import type { ApiKeysTable } from "./schema.ts";

const PUBLIC_COLUMNS = ["id", "tenant_id", "name", "permissions", "created_at", "revoked_at", "created_by"] as const;

function toApiKey(row: Pick<Selectable<ApiKeysTable>, (typeof PUBLIC_COLUMNS)[number]>): StoredApiKey {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    permissions: row.permissions === "" ? [] : (row.permissions.split(",") as Permission[]),
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    createdBy: row.created_by,
  };
}

export function createApiKeyStore({ db }: SqlDatabase): ApiKeyStore {
  return {
    async create(key, secretHash) {
      await db
        .insertInto("api_keys")
        .values({
          id: key.id,
          tenant_id: key.tenantId,
          name: key.name,
          secret_hash: secretHash,
          permissions: key.permissions.join(","),
          created_at: key.createdAt,
          revoked_at: key.revokedAt,
          created_by: key.createdBy,
        })
        .execute();
    },

    async findBySecretHash(secretHash) {
      const row = await db.selectFrom("api_keys").select(PUBLIC_COLUMNS).where("secret_hash", "=", secretHash).executeTakeFirst();
      return row && toApiKey(row);
    },

    async get(id) {
      const row = await db.selectFrom("api_keys").select(PUBLIC_COLUMNS).where("id", "=", id).executeTakeFirst();
      return row && toApiKey(row);
    },

    async list(tenantId, limit) {
      const rows = await db
        .selectFrom("api_keys")
        .select(PUBLIC_COLUMNS)
        .where("tenant_id", "=", tenantId)
        .orderBy("created_at")
        .orderBy("id")
        .limit(limit)
        .execute();
      return rows.map(toApiKey);
    },

    async revoke(id, at) {
      // Only a live key is changed, so the first revocation time is kept.
      await db.updateTable("api_keys").set({ revoked_at: at }).where("id", "=", id).where("revoked_at", "is", null).execute();
      const row = await db
        .selectFrom("api_keys")
        .select([...PUBLIC_COLUMNS, "secret_hash"])
        .where("id", "=", id)
        .executeTakeFirst();
      if (!row) return undefined;
      const { secret_hash, ...key } = row;
      return { key: toApiKey(key), secretHash: secret_hash };
    },
  };
}
