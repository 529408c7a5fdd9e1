// Social sign-in providers over Kysely (MySQL/MariaDB/TiDB and SQLite).
import type { Selectable } from "kysely";
import type { SocialProviderStore, StoredSocialProvider } from "../../domain/ports/social-providers.ts";
import type { SqlDatabase } from "./database.ts";
import type { SocialProvidersTable } from "./schema.ts";

function toProvider(row: Selectable<SocialProvidersTable>): StoredSocialProvider {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    kind: Number(row.kind),
    name: row.name,
    issuer: row.issuer,
    clientId: row.client_id,
    scopes: JSON.parse(row.scopes) as string[],
    redirectUris: JSON.parse(row.redirect_uris) as string[],
    appleTeamId: row.apple_team_id,
    appleKeyId: row.apple_key_id,
    wrappedKey: row.wrapped_key,
    secretsSealed: row.secrets,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toRow(p: StoredSocialProvider): SocialProvidersTable {
  return {
    id: p.id,
    tenant_id: p.tenantId,
    kind: p.kind,
    name: p.name,
    issuer: p.issuer,
    client_id: p.clientId,
    scopes: JSON.stringify(p.scopes),
    redirect_uris: JSON.stringify(p.redirectUris),
    apple_team_id: p.appleTeamId,
    apple_key_id: p.appleKeyId,
    wrapped_key: p.wrappedKey,
    secrets: p.secretsSealed,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

export function createSqlSocialProviderStore({ db }: SqlDatabase): SocialProviderStore {
  return {
    async create(provider) {
      await db.insertInto("social_providers").values(toRow(provider)).execute();
    },
    async get(tenantId, id) {
      const row = await db.selectFrom("social_providers").selectAll().where("id", "=", id).where("tenant_id", "=", tenantId).executeTakeFirst();
      return row && toProvider(row);
    },
    async list(tenantId, limit) {
      const rows = await db
        .selectFrom("social_providers")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .orderBy("created_at")
        .orderBy("id")
        .limit(limit)
        .execute();
      return rows.map(toProvider);
    },
    async update(next, expectedUpdatedAt) {
      const { id, tenant_id, created_at, ...changed } = toRow(next);
      const result = await db
        .updateTable("social_providers")
        .set(changed)
        .where("id", "=", id)
        .where("tenant_id", "=", tenant_id)
        .where("updated_at", "=", expectedUpdatedAt)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async listKeys({ afterId, limit }) {
      const rows = await db.selectFrom("social_providers").select(["id", "wrapped_key"]).where("id", ">", afterId).orderBy("id").limit(limit).execute();
      return rows.map((r) => ({ id: r.id, wrappedKey: r.wrapped_key }));
    },
    async replaceKey({ id, expected, wrappedKey }) {
      const result = await db
        .updateTable("social_providers")
        .set({ wrapped_key: wrappedKey })
        .where("id", "=", id)
        .where("wrapped_key", "=", expected)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async delete(tenantId, id) {
      const result = await db.deleteFrom("social_providers").where("id", "=", id).where("tenant_id", "=", tenantId).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
  };
}
