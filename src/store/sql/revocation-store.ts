// The RevocationStore (src/domain/ports.ts) over Kysely, and the insert the
// account changes make in their own transactions (./stores.ts,
// ./account-admin-store.ts): a revocation commits with the change that owes it.
import type { Kysely, Selectable, Transaction } from "kysely";
import { newId } from "../../domain/ids.ts";
import type { PendingRevocation, RevocationReason, RevocationRequest, RevocationStore } from "../../domain/ports/revocations.ts";
import type { Database, PendingRevocationsTable } from "./schema.ts";

function toRevocation(row: Selectable<PendingRevocationsTable>): PendingRevocation {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    accountId: row.account_id,
    reason: row.reason as RevocationReason,
    createdAt: Number(row.created_at),
    keepTokenHash: row.keep_token_hash,
  };
}

/** Queues a revocation of the account's sessions inside the caller's transaction. */
export async function queueRevocation(
  trx: Transaction<Database> | Kysely<Database>,
  input: { tenantId: string; accountId: string; at: number; request: RevocationRequest },
): Promise<void> {
  await trx
    .insertInto("pending_revocations")
    .values({
      id: newId(input.at),
      account_id: input.accountId,
      tenant_id: input.tenantId,
      reason: input.request.reason,
      keep_token_hash: input.request.keepTokenHash ?? null,
      created_at: input.at,
    })
    .execute();
}

export function createSqlRevocationStore(db: Kysely<Database>): RevocationStore {
  return {
    async forAccount(tenantId, accountId) {
      // The (account_id, created_at) index; tenant_id only filters the few rows found.
      const rows = await db
        .selectFrom("pending_revocations")
        .selectAll()
        .where("account_id", "=", accountId)
        .where("tenant_id", "=", tenantId)
        .orderBy("created_at")
        .orderBy("id")
        .execute();
      return rows.map(toRevocation);
    },
    async listPending(limit) {
      const rows = await db.selectFrom("pending_revocations").selectAll().orderBy("id").limit(limit).execute();
      return rows.map(toRevocation);
    },
    queue: (input) => queueRevocation(db, input),
    async complete(id) {
      await db.deleteFrom("pending_revocations").where("id", "=", id).execute();
    },
  };
}
