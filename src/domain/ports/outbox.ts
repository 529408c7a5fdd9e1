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
  /** When it was queued, or last requeued by an operator: its maximum age counts from here. */
  queuedAt: number;
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
  /**
   * Records a failed attempt; `nextAttemptAt` null means give up (status "failed",
   * at `details.at`). `error` is stored as last_error: codes, never text holding an
   * address. A message given up on loses its payload, unless `details.keepPayload`
   * (sealed, so an operator can requeue it; retention deletes the row later).
   * A no-op when `owner` no longer holds the lease.
   */
  markFailed(
    id: string,
    owner: string,
    error: string,
    nextAttemptAt: number | null,
    details?: { errorClass?: "permanent" | "transient"; at?: number; keepPayload?: boolean },
  ): Promise<void>;
}

/** A failed message as operators see it: no recipient, no payload. */
export interface FailedMessage {
  id: string;
  tenantId: string;
  kind: string;
  attempts: number;
  /** Codes of the last failure ("EENVELOPE 550 RCPT TO"), never the server's text. */
  lastError: string;
  /** "permanent" or "transient" (a transient failure given up on once the message was too old). */
  lastErrorClass: string;
  createdAt: number;
  /** When it was given up on. */
  failedAt: number | null;
  /** When it was last (re)queued. */
  queuedAt: number;
  /** False when its payload is gone (could not be opened): a requeue would send nothing. */
  requeueable: boolean;
}

/** The operators' side: failed messages and the queue's depth. */
export interface OutboxOperations {
  /**
   * Up to `limit` failed messages — of one tenant, or of every tenant — in
   * (tenant id, id) order after `after` (an index range); never the payload.
   */
  listFailed(input: { tenantId?: string; after?: { tenantId: string; id: string }; limit: number }): Promise<FailedMessage[]>;
  /**
   * Puts a failed message back in the queue as if new: due at `now`, no attempts
   * (its backoff restarts), its maximum age counting again from `now`.
   * "not_found": no failed message has this id (in the tenant, when given);
   * "payload_gone": it failed because its payload could not be opened, and
   * nothing is left to send. Safe to repeat (an already pending one is
   * "requeued"). `tenantId`: the message's tenant, when it exists.
   */
  requeue(input: { id: string; tenantId?: string; now: number }): Promise<{ outcome: "requeued" | "not_found" | "payload_gone"; tenantId?: string }>;
  /** Requeues every failed message that still has its payload (of the tenant, when given); returns how many. */
  requeueAll(input: { tenantId?: string; now: number }): Promise<number>;
  /** How many messages wait to be sent (pending) and how many were given up on (failed), in every tenant. */
  countByStatus(): Promise<{ pending: number; failed: number }>;
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

export interface OutboxStore extends OutboxWriter, OutboxDelivery, OutboxHistory, OutboxOperations {}
