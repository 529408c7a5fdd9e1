// Second factors and recovery codes over Kysely (MySQL/MariaDB/TiDB and SQLite).
// Single use is a compare-and-set in the UPDATE's WHERE clause: two concurrent
// uses of one code or one TOTP step never both succeed.
import type { Kysely, Selectable } from "kysely";
import type { SecondFactorStore, StoredSecondFactor } from "../../domain/ports/second-factors.ts";
import type { SqlDatabase } from "./database.ts";
import { insertEvents } from "./event-store.ts";
import type { Database, SecondFactorsTable } from "./schema.ts";

const num = (value: number | string | bigint | null) => (value === null ? null : Number(value));

function toFactor(row: Selectable<SecondFactorsTable>): StoredSecondFactor {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    accountId: row.account_id,
    kind: Number(row.kind),
    secretSealed: row.secret,
    createdAt: Number(row.created_at),
    confirmedAt: num(row.confirmed_at),
    lastUsedStep: num(row.last_used_step),
    lastUsedAt: num(row.last_used_at),
  };
}

/** Whether the account has a confirmed factor (in `db`, or in a transaction's view). */
async function hasConfirmedFactor(db: Kysely<Database>, accountId: string): Promise<boolean> {
  const row = await db
    .selectFrom("second_factors")
    .select("id")
    .where("account_id", "=", accountId)
    .where("confirmed_at", "is not", null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export function createSqlSecondFactorStore({ db }: SqlDatabase): SecondFactorStore {
  return {
    async list(accountId) {
      const rows = await db.selectFrom("second_factors").selectAll().where("account_id", "=", accountId).orderBy("created_at").orderBy("id").execute();
      return rows.map(toFactor);
    },

    hasConfirmed(accountId) {
      return hasConfirmedFactor(db, accountId);
    },

    async putPending(factor) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom("second_factors").where("account_id", "=", factor.accountId).where("confirmed_at", "is", null).execute();
        await trx
          .insertInto("second_factors")
          .values({
            id: factor.id,
            tenant_id: factor.tenantId,
            account_id: factor.accountId,
            kind: factor.kind,
            secret: factor.secretSealed,
            created_at: factor.createdAt,
            confirmed_at: null,
            last_used_step: null,
            last_used_at: null,
          })
          .execute();
      });
    },

    async confirm({ accountId, factorId, at, step, recoveryCodeHashes, events }) {
      return db.transaction().execute(async (trx) => {
        const confirmed = await trx
          .updateTable("second_factors")
          .set({ confirmed_at: at, last_used_step: step, last_used_at: at })
          .where("id", "=", factorId)
          .where("account_id", "=", accountId)
          .where("confirmed_at", "is", null)
          .executeTakeFirst();
        if (Number(confirmed.numUpdatedRows) === 0) return false;
        await trx.deleteFrom("recovery_codes").where("account_id", "=", accountId).execute();
        if (recoveryCodeHashes.length > 0)
          await trx
            .insertInto("recovery_codes")
            .values(recoveryCodeHashes.map((code_hash) => ({ account_id: accountId, code_hash, created_at: at, used_at: null })))
            .execute();
        await insertEvents(trx, events);
        return true;
      });
    },

    async useStep(accountId, factorId, step, at) {
      const result = await db
        .updateTable("second_factors")
        .set({ last_used_step: step, last_used_at: at })
        .where("id", "=", factorId)
        .where("account_id", "=", accountId)
        .where("confirmed_at", "is not", null)
        .where((eb) => eb.or([eb("last_used_step", "is", null), eb("last_used_step", "<", step)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async remove(accountId, factorId, events) {
      return db.transaction().execute(async (trx) => {
        const deleted = await trx
          .deleteFrom("second_factors")
          .where("id", "=", factorId)
          .where("account_id", "=", accountId)
          .where("confirmed_at", "is not", null)
          .executeTakeFirst();
        if (Number(deleted.numDeletedRows) === 0) return false;
        if (!(await hasConfirmedFactor(trx, accountId))) await trx.deleteFrom("recovery_codes").where("account_id", "=", accountId).execute();
        await insertEvents(trx, events);
        return true;
      });
    },

    async replaceRecoveryCodes(accountId, hashes, at, events) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom("recovery_codes").where("account_id", "=", accountId).execute();
        if (hashes.length > 0)
          await trx
            .insertInto("recovery_codes")
            .values(hashes.map((code_hash) => ({ account_id: accountId, code_hash, created_at: at, used_at: null })))
            .execute();
        await insertEvents(trx, events);
      });
    },

    async useRecoveryCode(accountId, hash, at) {
      const result = await db
        .updateTable("recovery_codes")
        .set({ used_at: at })
        .where("account_id", "=", accountId)
        .where("code_hash", "=", hash)
        .where("used_at", "is", null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async countRecoveryCodes(accountId) {
      const row = await db
        .selectFrom("recovery_codes")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("account_id", "=", accountId)
        .where("used_at", "is", null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
