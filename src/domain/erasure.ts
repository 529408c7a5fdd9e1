// Erasure (GDPR art. 17): the data key is destroyed and ledgered first, then the
// rows go and the sessions' revocation commits with them, so every step leaves
// nothing readable and a restore from backup is undone by replaying the ledger.
// The order and why each step is safe: docs/privacy.md#erasure.
import type { Keyring } from "../crypto/keyring.ts";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { EMAIL_INDEX, openAccount } from "./accounts.ts";
import type { AuditLog } from "./audit-log.ts";
import { assertKeepsASuperAdmin } from "./authorization.ts";
import { accountEvent, EventType } from "./events.ts";
import { DomainError, unauthenticated } from "./errors.ts";
import { givenPassword } from "./identity.ts";
import type { Limits } from "./limits.ts";
import type { AccountEraser, AccountReader, StoredAccount } from "./ports/accounts.ts";
import type { KeyReader } from "./ports/keys.ts";
import type { SessionPrincipal } from "./principal.ts";
import type { Revocations } from "./revocations.ts";
import type { RequestMeta } from "./sessions.ts";
import type { Tenants } from "./tenants.ts";

/** Ledger entries read and compared with the main database per query. */
const REPLAY_BATCH = 500;
/** A session signed in this recently may erase its account without the password again. */
export const RECENT_SIGN_IN_MS = 10 * 60_000;

export interface ErasureRequest {
  tenantId: string;
  accountId: string;
  /** Who asks, as the audit trail names actors: "account:<id>" (the person or an admin), "api_key:<id>", "system". */
  actor: string;
  /** Why, as stated by an admin; "" when the person erases their own account. */
  reason: string;
  /** Where the request came from (recorded with the audit event); absent for operator commands. */
  meta?: RequestMeta;
  /**
   * Runs under the account's lock before anything is erased, with the locked row
   * and the number of OTHER active super admins of the default tenant; throw to
   * refuse (nothing is erased).
   */
  check?: (current: StoredAccount, otherActiveSuperAdmins: number) => void;
}

export interface ErasureReplay {
  /** Ledger entries compared with the main database. */
  checked: number;
  /** Accounts of the ledger that had rows in the main database again, now deleted. */
  erased: number;
}

export interface Erasure {
  /**
   * Erases the account (see the steps above) and returns it as it was stored.
   * not_found (ACCOUNT_NOT_FOUND) when the tenant has no such account — or no
   * longer has it (erased already).
   */
  erase(request: ErasureRequest): Promise<StoredAccount>;
  /**
   * The person erases their own account (AccountService.DeleteAccount). Needs a
   * recent sign-in (the session is at most RECENT_SIGN_IN_MS old) or the current
   * password: wrong → unauthenticated (INVALID_CREDENTIALS), counted with the
   * sign-in attempts of the caller's IP and of the address; missing with an older
   * session → failed_precondition (RECENT_SIGN_IN_REQUIRED). The last active super
   * admin cannot erase themself (LAST_SUPER_ADMIN).
   */
  eraseOwn(input: { principal: SessionPrincipal; password: string; meta: RequestMeta }): Promise<void>;
  /**
   * Re-applies every erasure of the ledger to the main database: deletes the rows
   * of ledgered accounts that reappeared (a restored backup). Idempotent; reads
   * the ledger in batches and costs one indexed IN query per per-account table
   * per batch.
   */
  replay(onProgress?: (progress: ErasureReplay) => void): Promise<ErasureReplay>;
}

/** What replaying the erasure ledger reads and deletes. */
export interface ErasureLedgerDeps {
  accounts: Pick<AccountEraser, "deleteAccountRows">;
  keys: Pick<KeyReader, "listErased">;
}

export interface ErasureDeps extends ErasureLedgerDeps {
  /** Erasure is the privileged half; reading is only for eraseOwn's password check. */
  accounts: Pick<AccountReader, "getAccount"> & Pick<AccountEraser, "eraseAccount" | "deleteAccountRows">;
  revocations: Pick<Revocations, "settle">;
  /** Where the pseudonymous "account.erased" event goes. */
  audit?: AuditLog;
  now: () => number;
  /** For eraseOwn: the password check and the sign-in limits it counts against. */
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  passwords: PasswordHasher;
  limits: Pick<Limits, "passwordGuess">;
}

export function createErasure(deps: ErasureDeps): Erasure {
  const { accounts } = deps;
  const erasure: Erasure = {
    async erase({ tenantId, accountId, actor, reason, meta, check }) {
      const at = deps.now();
      // Pseudonymous: the account's id is all the event keeps (its other events go with its rows).
      const events = [accountEvent(EventType.ACCOUNT_DELETED, { tenantId, id: accountId }, at)];
      const erased = await accounts.eraseAccount({ tenantId, accountId, at, events, ...(check ? { check } : {}) });
      if (!erased) {
        // Erased already (a retry after a failure)? Whatever it still owes is settled.
        await deps.revocations.settle(tenantId, accountId);
        throw new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");
      }
      await deps.revocations.settle(tenantId, accountId);
      // Where an admin asked from is about the admin; where the person asked from is about them.
      const bySelf = actor === `account:${accountId}`;
      await deps.audit?.record({
        tenantId,
        actor,
        action: "account.erased",
        target: `account:${accountId}`,
        reason,
        ip: bySelf ? "" : (meta?.ip ?? ""),
        userAgent: bySelf ? "" : (meta?.userAgent ?? ""),
        outcome: "success",
      });
      return erased;
    },

    async eraseOwn({ principal, password, meta }) {
      const { tenantId, accountId } = principal;
      const recent = deps.now() - principal.authenticatedAt <= RECENT_SIGN_IN_MS;
      if (password !== "" || !recent) {
        if (password === "") {
          throw new DomainError(
            "failed_precondition",
            "RECENT_SIGN_IN_REQUIRED",
            `erasing the account needs a sign-in within the last ${RECENT_SIGN_IN_MS / 60_000} minutes, or the current password`,
          );
        }
        const given = givenPassword("password", password);
        const found = await accounts.getAccount(tenantId, accountId);
        if (!found) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
        const { account } = openAccount(deps.keyring, found.account, found.wrappedKey);
        // Guesses count with the sign-in attempts: a stolen session cannot try passwords faster than a sign-in form.
        const guess = await deps.limits.passwordGuess(await deps.tenants.get(tenantId), deps.keyring.blindIndex(EMAIL_INDEX, account.profile.email), meta.ip);
        const matches = found.account.passwordHash
          ? await deps.passwords.verify(found.account.passwordHash, given)
          : (await deps.passwords.verifyDummy(given), false);
        if (!matches) throw unauthenticated("INVALID_CREDENTIALS", "the password is incorrect");
        await guess.refund();
      }
      await erasure.erase({
        tenantId,
        accountId,
        actor: `account:${accountId}`,
        reason: "",
        meta,
        check: (current, others) => assertKeepsASuperAdmin(current, { kind: "delete" }, others),
      });
    },

    replay: (onProgress) => replayErasures(deps, onProgress),
  };
  return erasure;
}

/**
 * Erasure.replay without the rest of the runtime (the cluster primary and the
 * operator command run it before anything serves). Sessions are not touched:
 * Redis holds nothing durable and is never restored from a backup.
 */
export async function replayErasures(stores: ErasureLedgerDeps, onProgress?: (progress: ErasureReplay) => void): Promise<ErasureReplay> {
  const progress: ErasureReplay = { checked: 0, erased: 0 };
  let afterAccountId = "";
  for (;;) {
    const batch = await stores.keys.listErased({ afterAccountId, limit: REPLAY_BATCH });
    if (batch.length === 0) break;
    const ids = batch.map((r) => r.accountId);
    const reappeared = await stores.accounts.deleteAccountRows(ids);
    progress.checked += batch.length;
    progress.erased += reappeared.length;
    onProgress?.({ ...progress });
    if (batch.length < REPLAY_BATCH) break;
    afterAccountId = ids[ids.length - 1]!;
  }
  return progress;
}
