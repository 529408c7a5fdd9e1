// The AccountStore methods of user management (src/domain/admin-users.ts) over
// Kysely, for MySQL/MariaDB/TiDB and SQLite: keyset listing, guarded changes and
// deletion. Composed into the account store in ./stores.ts.
//
// Guarded changes and deletions take their locks in one order — the default
// tenant's super admin rows first, then the target row — so the "last active
// super admin" check and the change it allows happen under the same locks: two
// concurrent demotions of the last two super admins queue, and the second sees
// the first. (MySQL: the no-op UPDATEs take the row locks; SQLite serializes writers.)
import type { Kysely, Selectable, Transaction } from "kysely";
import type { AccountListQuery, AccountStore, StoredAccount } from "../../domain/ports/accounts.ts";
import type { KeyStore } from "../../domain/ports/keys.ts";
import { withDeadlockRetry } from "./errors.ts";
import { DEFAULT_TENANT_ID } from "../../domain/tenants.ts";
import { AccountState, Role, SubscriptionStatus } from "../../domain/types.ts";
import { insertMessages } from "./outbox-store.ts";
import { deleteAccountRows } from "./account-tables.ts";
import { insertEvents } from "./event-store.ts";
import { queueRevocation } from "./revocation-store.ts";
import type { AccountsTable, Database } from "./schema.ts";

type AdminMethods = Pick<AccountStore, "listAccounts" | "updateAccount" | "eraseAccount" | "listSubscriptionsDue">;

/**
 * The listing query, exported so a test can EXPLAIN exactly what runs. Each
 * filter is an equality on the leading columns of one index — (tenant_id,
 * created_at, id), (tenant_id, role, created_at, id), (tenant_id, state,
 * created_at[, id]) or (tenant_id, plan, created_at, id) — so the page is an
 * index range read in order, never a scan and sort of the tenant's accounts.
 * The keyset condition is written as `created_at >= c AND (created_at > c OR id > i)`:
 * a plain range on created_at that every engine's optimizer uses.
 */
export function listAccountsQuery(db: Kysely<Database>, query: AccountListQuery) {
  let q = db.selectFrom("accounts").selectAll("accounts").where("accounts.tenant_id", "=", query.tenantId);
  if (query.role !== undefined) q = q.where("accounts.role", "=", query.role);
  if (query.state !== undefined) q = q.where("accounts.state", "=", query.state);
  if (query.plan !== undefined) q = q.where("accounts.plan", "=", query.plan);
  if (query.planStatus !== undefined) q = q.where("accounts.plan_status", "=", query.planStatus);
  if (query.createdAtOrAfter !== undefined) q = q.where("accounts.created_at", ">=", query.createdAtOrAfter);
  if (query.createdBefore !== undefined) q = q.where("accounts.created_at", "<", query.createdBefore);
  const after = query.after;
  if (after) {
    q = q
      .where("accounts.created_at", ">=", after.createdAt)
      .where((eb) => eb.or([eb("accounts.created_at", ">", after.createdAt), eb("accounts.id", ">", after.id)]));
  }
  return q.orderBy("accounts.created_at").orderBy("accounts.id").limit(query.limit);
}

/**
 * Locks the target (after the default tenant's super admins) and reads it, with
 * the number of OTHER active super admins of the default tenant (0 elsewhere:
 * the last-super-admin rule only concerns the default tenant). "keyless" when
 * the row is there (and locked) but its key is gone: an erasure interrupted
 * after it destroyed the key.
 */
async function lockForChange(
  trx: Transaction<Database>,
  keys: KeyStore,
  tenantId: string,
  accountId: string,
  toAccount: (row: Selectable<AccountsTable>) => StoredAccount,
) {
  const touch = () => trx.updateTable("accounts").set((eb) => ({ updated_at: eb.ref("updated_at") }));
  if (tenantId === DEFAULT_TENANT_ID) await touch().where("tenant_id", "=", DEFAULT_TENANT_ID).where("role", "=", Role.SUPER_ADMIN).execute();
  const locked = await touch().where("id", "=", accountId).where("tenant_id", "=", tenantId).executeTakeFirst();
  if (Number(locked.numUpdatedRows) === 0) return undefined;
  const row = await trx.selectFrom("accounts").selectAll().where("id", "=", accountId).where("tenant_id", "=", tenantId).executeTakeFirst();
  // The key store may be another database: read outside this transaction, by primary key.
  if (!row) return undefined;
  const wrappedKey = await keys.get(accountId);
  if (wrappedKey === undefined) return "keyless" as const;
  let otherActiveSuperAdmins = 0;
  if (tenantId === DEFAULT_TENANT_ID) {
    const counted = await trx
      .selectFrom("accounts")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("tenant_id", "=", DEFAULT_TENANT_ID)
      .where("role", "=", Role.SUPER_ADMIN)
      .where("state", "=", AccountState.ACTIVE)
      .where("id", "!=", accountId)
      .executeTakeFirstOrThrow();
    otherActiveSuperAdmins = Number(counted.n);
  }
  return { account: toAccount(row), wrappedKey, otherActiveSuperAdmins };
}

export function accountAdminMethods(db: Kysely<Database>, toAccount: (row: Selectable<AccountsTable>) => StoredAccount, keys: KeyStore): AdminMethods {
  return {
    async listAccounts(query) {
      const rows = await listAccountsQuery(db, query).execute();
      // The page's keys in one IN query on the key store's primary key; an account without one (erased) is left out.
      const wrapped = await keys.getMany(rows.map((r) => r.id));
      return rows.flatMap((row) => {
        const wrappedKey = wrapped.get(row.id);
        return wrappedKey === undefined ? [] : [{ account: toAccount(row), wrappedKey }];
      });
    },

    async updateAccount({ tenantId, accountId, at, change, onceKey }) {
      // Every effect is in this database (the revocation is queued in it): safe to run again after a deadlock.
      return withDeadlockRetry(() =>
        db.transaction().execute(async (trx) => {
          const locked = await lockForChange(trx, keys, tenantId, accountId, toAccount);
          if (!locked || locked === "keyless") return undefined;
          if (onceKey !== undefined) {
            // Under the account's lock: a concurrent retry with the same key waits, then finds it here.
            const seen = await trx
              .selectFrom("subscription_changes")
              .select("account_id")
              .where("tenant_id", "=", tenantId)
              .where("key_hash", "=", onceKey)
              .executeTakeFirst();
            if (seen) return { account: locked.account, wrappedKey: locked.wrappedKey, replayed: true };
            await trx.insertInto("subscription_changes").values({ tenant_id: tenantId, key_hash: onceKey, account_id: accountId, created_at: at }).execute();
          }
          const { endSessions, messages, events, ...update } = change(locked.account, locked.otherActiveSuperAdmins, locked.wrappedKey);
          if (endSessions) await queueRevocation(trx, { tenantId, accountId, at, request: { reason: endSessions } });
          if (messages && messages.length > 0) await insertMessages(trx, messages);
          await insertEvents(trx, events);
          const set = {
            ...(update.role !== undefined && { role: update.role }),
            ...(update.state !== undefined && { state: update.state }),
            ...(update.plan !== undefined && { plan: update.plan }),
            ...(update.planExpiresAt !== undefined && { plan_expires_at: update.planExpiresAt }),
            ...(update.planStatus !== undefined && { plan_status: update.planStatus }),
            ...(update.planRenews !== undefined && { plan_renews: update.planRenews ? 1 : 0 }),
            ...(update.planRemindedFor !== undefined && { plan_reminded_for: update.planRemindedFor }),
            ...(update.passwordHash !== undefined && { password_hash: update.passwordHash }),
            ...(update.temporaryPasswordUntil !== undefined && { temporary_password_until: update.temporaryPasswordUntil }),
          };
          if (Object.keys(set).length === 0) return { account: locked.account, wrappedKey: locked.wrappedKey };
          await trx
            .updateTable("accounts")
            .set({ ...set, updated_at: at })
            .where("id", "=", accountId)
            .where("tenant_id", "=", tenantId)
            .execute();
          return { account: { ...locked.account, ...update, updatedAt: at }, wrappedKey: locked.wrappedKey };
        }),
      );
    },

    async listSubscriptionsDue({ tenantId, kind, endsBy, notBefore, afterId, limit }) {
      // A range of accounts_tenant_plan_expires; the other conditions filter within it.
      let q = db
        .selectFrom("accounts")
        .select("id")
        .where("tenant_id", "=", tenantId)
        .where("plan_expires_at", "is not", null)
        .where("plan_expires_at", "<=", endsBy);
      if (notBefore !== undefined) q = q.where("plan_expires_at", ">", notBefore);
      if (kind === "expiry") {
        q = q
          .where("plan_status", "!=", SubscriptionStatus.EXPIRED)
          .where("plan_status", "!=", SubscriptionStatus.NONE)
          .where((eb) => eb.or([eb("plan_status", "=", SubscriptionStatus.TRIALING), eb("plan_renews", "=", 0)]));
      } else {
        q = q
          .where("plan_status", "=", SubscriptionStatus.ACTIVE)
          .where("plan_renews", "=", 1)
          .where((eb) => eb.or([eb("plan_reminded_for", "is", null), eb("plan_reminded_for", "!=", eb.ref("plan_expires_at"))]));
      }
      if (afterId !== undefined) q = q.where("id", ">", afterId);
      const rows = await q.orderBy("id").limit(limit).execute();
      return rows.map((r) => r.id);
    },

    async eraseAccount({ tenantId, accountId, at, check, events }) {
      return db.transaction().execute(async (trx) => {
        const locked = await lockForChange(trx, keys, tenantId, accountId, toAccount);
        if (!locked) return undefined;
        if (locked === "keyless") {
          // An erasure stopped after destroying the key (the main transaction failed): finish
          // it — the rows go and the sessions' revocation is queued — yet answer "not there".
          await deleteAccountRows(trx, accountId);
          await queueRevocation(trx, { tenantId, accountId, at, request: { reason: "erased" } });
          return undefined;
        }
        check?.(locked.account, locked.otherActiveSuperAdmins);
        // The key and the ledger entry commit first (the key store's own transaction): from
        // then on the rows are unreadable, and the ledger replay deletes them if this fails.
        await keys.erase({ accountId, tenantId, erasedAt: at });
        await deleteAccountRows(trx, accountId);
        await queueRevocation(trx, { tenantId, accountId, at, request: { reason: "erased" } });
        // After the rows (events and deliveries about the person went with them): only the id is left.
        await insertEvents(trx, events);
        return locked.account;
      });
    },
  };
}
