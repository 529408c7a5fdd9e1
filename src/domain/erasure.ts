// Erasure (GDPR art. 17): everything about an account goes, and its data key is
// destroyed so any copy of its encrypted data, in any backup, stays unreadable.
import type { AuditLog } from "./audit-log.ts";
import { DomainError } from "./errors.ts";
import type { DurableStores } from "./ports.ts";
import type { RequestMeta, Sessions } from "./sessions.ts";

export interface ErasureRequest {
  tenantId: string;
  accountId: string;
  /** Who asks, as the audit trail names actors: "account:<id>" (the person or an admin), "api_key:<id>", "system". */
  actor: string;
  /** Why, as stated by an admin; "" when the person erases their own account. */
  reason: string;
  /** Where the request came from (recorded with the audit event); absent for operator commands. */
  meta?: RequestMeta;
}

export interface ErasureReplay {
  /** Ledger entries compared with the main database. */
  checked: number;
  /** Accounts of the ledger that had rows in the main database again, now deleted. */
  erased: number;
}

export interface Erasure {
  /**
   * Erases the account: destroys its data key and records its id in the erasure
   * ledger (the key store, one transaction), deletes every row about it in the
   * main database (one transaction), ends its sessions everywhere, and records a
   * pseudonymous audit event ("account.erased", target "account:<id>").
   * not_found (ACCOUNT_NOT_FOUND) when the tenant has no such account.
   */
  erase(request: ErasureRequest): Promise<void>;
  /**
   * Re-applies every erasure of the ledger to the main database: deletes the rows
   * of ledgered accounts that reappeared (a restored backup). Idempotent.
   */
  replay(onProgress?: (progress: ErasureReplay) => void): Promise<ErasureReplay>;
}

export interface ErasureDeps {
  durable: DurableStores;
  sessions: Sessions;
  /** Where the pseudonymous "account.erased" event goes. */
  audit?: AuditLog;
  now: () => number;
}

export function createErasure(_deps: ErasureDeps): Erasure {
  const unimplemented = () => new DomainError("unimplemented", "ERASURE_UNIMPLEMENTED", "erasure is not implemented yet");
  return {
    erase: async () => {
      throw unimplemented();
    },
    replay: async () => {
      throw unimplemented();
    },
  };
}
