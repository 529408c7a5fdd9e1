// Consent decisions over Kysely (MySQL/MariaDB/TiDB and SQLite). Rows are only
// ever inserted; reads go through the (account_id, recorded_at, id) index.
import { insertEvents } from "./event-store.ts";
import { sql, type Selectable, type Transaction } from "kysely";
import type { ConsentStore, StoredConsent } from "../../domain/ports/consents.ts";
import type { SqlDatabase } from "./database.ts";
import type { ConsentsTable, Database } from "./schema.ts";

function toConsent(row: Selectable<ConsentsTable>): StoredConsent {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    accountId: row.account_id,
    purpose: row.purpose,
    version: row.version,
    granted: Number(row.granted) === 1,
    client: row.client,
    recordedAt: Number(row.recorded_at),
  };
}

/** Inserts consent rows on a connection or inside a caller's transaction (an account's creation). */
export async function insertConsents(db: Transaction<Database> | SqlDatabase["db"], consents: readonly StoredConsent[]): Promise<void> {
  if (consents.length === 0) return;
  await db
    .insertInto("consents")
    .values(
      consents.map((c) => ({
        id: c.id,
        tenant_id: c.tenantId,
        account_id: c.accountId,
        purpose: c.purpose,
        version: c.version,
        granted: c.granted ? 1 : 0,
        client: c.client,
        recorded_at: c.recordedAt,
      })),
    )
    .execute();
}

export function createSqlConsentStore({ db }: SqlDatabase): ConsentStore {
  return {
    async append(consents, events) {
      if (consents.length === 0) return;
      await db.transaction().execute(async (trx) => {
        await insertConsents(trx, consents);
        await insertEvents(trx, events);
      });
    },

    async history({ tenantId, accountId, limit, before }) {
      let query = db.selectFrom("consents").selectAll().where("account_id", "=", accountId).where("tenant_id", "=", tenantId);
      if (before) {
        query = query.where((eb) =>
          eb.or([eb("recorded_at", "<", before.recordedAt), eb.and([eb("recorded_at", "=", before.recordedAt), eb("id", "<", before.id)])]),
        );
      }
      const rows = await query.orderBy("recorded_at", "desc").orderBy("id", "desc").limit(limit).execute();
      return rows.map(toConsent);
    },

    async current(tenantId, accountId) {
      // The newest row per purpose (window functions: MySQL 8, MariaDB 10.2+, TiDB, SQLite 3.25+).
      const ranked = db
        .selectFrom("consents")
        .selectAll()
        .select(sql<number>`row_number() over (partition by purpose order by recorded_at desc, id desc)`.as("position"))
        .where("account_id", "=", accountId)
        .where("tenant_id", "=", tenantId);
      const rows = await db.selectFrom(ranked.as("ranked")).selectAll().where("position", "=", 1).execute();
      return rows.map(({ position: _position, ...row }) => toConsent(row)).sort((a, b) => (a.purpose < b.purpose ? -1 : a.purpose > b.purpose ? 1 : 0));
    },
  };
}
