// The durable outbox: flows queue messages, the delivery worker leases and
// settles them, retention purges them, the data export lists them.
/** A message to deliver, sealed under the recipient account's data key. */
export interface OutboxMessage {
  id: string;
  tenantId: string;
  accountId: string;
  kind: string;
  payloadSealed: string;
  createdAt: number;
}

export interface ClaimedMessage extends OutboxMessage {
  attempts: number;
}

/** A message's record without its payload (the data export lists them). */
export interface OutboxEntry {
  id: string;
  kind: string;
  /** "pending", "sent" or "failed". */
  status: string;
  attempts: number;
  createdAt: number;
  sentAt: number | null;
}

/** Queuing messages (see ./errors.ts for the errors every method may throw). */
export interface OutboxWriter {
  /** Queues messages (outside an account creation), all or none; a repeated id throws already_exists. */
  enqueue(messages: OutboxMessage[]): Promise<void>;
}

/** The delivery worker's side: leases and outcomes. */
export interface OutboxDelivery {
  /**
   * Leases up to `limit` due messages to `owner` for `leaseMs`. A message is
   * never leased to two owners at once; an expired lease can be taken over.
   */
  claimDue(input: { now: number; limit: number; owner: string; leaseMs: number }): Promise<ClaimedMessage[]>;
  /** Records a successful delivery and drops the payload; a no-op when `owner` no longer holds the lease. */
  markSent(id: string, owner: string, at: number): Promise<void>;
  /** Records a failed attempt; `nextAttemptAt` null means give up (status "failed"). A no-op when `owner` no longer holds the lease. */
  markFailed(id: string, owner: string, error: string, nextAttemptAt: number | null): Promise<void>;
}

/** Reading what was sent and purging what is done. */
export interface OutboxHistory {
  /**
   * Deletes up to `limit` of the tenant's messages that were sent or given up on
   * ("sent", "failed") and created before `createdBefore`, oldest first (an index
   * range); pending ones are never touched. Returns how many it deleted (fewer than
   * `limit`: nothing more is due). Idempotent: several instances may run it at once.
   */
  purgeDelivered(input: { tenantId: string; createdBefore: number; limit: number }): Promise<number>;
  /**
   * Up to `limit` of the account's messages in the tenant, by ascending id (oldest
   * first), after `afterId` when given — what was sent to the person, never the payloads.
   */
  listForAccount(input: { tenantId: string; accountId: string; afterId?: string; limit: number }): Promise<OutboxEntry[]>;
}

export interface OutboxStore extends OutboxWriter, OutboxDelivery, OutboxHistory {}
