// Revocations committed changes still owe (src/domain/revocations.ts): written
// in the transaction of the change that ends an account's sessions, deleted
// once the session store has ended them. Until then every instance refuses
// those sessions. See ./errors.ts for the errors every method may throw.

/** Why a committed change ends an account's sessions. */
export type RevocationReason =
  | "role_changed"
  | "deactivated"
  | "erased"
  | "password_changed"
  | "password_reset"
  | "promoted"
  | "sessions_revoked"
  | "email_changed";

/** What a change asks the store to queue, in the change's own transaction. */
export interface RevocationRequest {
  reason: RevocationReason;
  /** A session that stays (the one that changed its password). */
  keepTokenHash?: string;
}

/** Sessions a committed change still has to end. */
export interface PendingRevocation {
  /** Time-ordered (newId): the oldest sorts first. */
  id: string;
  tenantId: string;
  accountId: string;
  reason: RevocationReason;
  /** The change's time: sessions issued at or before it end; later ones (a new sign-in) are not its business. */
  createdAt: number;
  /** A session that stays; null for none. */
  keepTokenHash: string | null;
}

/** The queue of pending revocations (migration 0008). Account changes write to it through AccountWriter/AccountEraser. */
export interface RevocationStore {
  /** The account's pending revocations in the tenant, oldest first. */
  forAccount(tenantId: string, accountId: string): Promise<PendingRevocation[]>;
  /** Up to `limit` pending revocations of every tenant, oldest first (a primary-key range). */
  listPending(limit: number): Promise<PendingRevocation[]>;
  /** Queues a revocation that no other change carries (an admin ending a user's sessions). */
  queue(input: { tenantId: string; accountId: string; at: number; request: RevocationRequest }): Promise<void>;
  /** Forgets a carried-out revocation; an unknown id (carried out by another instance) is ignored. */
  complete(id: string): Promise<void>;
}
