// The audit trail's storage: append-only, one hash chain per tenant.
import type { AuditEvent } from "../audit-log.ts";

/** An audit event as stored: exactly the event the domain hashed (see audit-log.ts). */
export type StoredAuditEvent = AuditEvent;

/** The prevHash of a chain's first event: a chain starts at { sequence: 0, hash: AUDIT_GENESIS_HASH }. */
export const AUDIT_GENESIS_HASH = "0".repeat(64);

/** The end of one tenant's audit chain; sequence 0 before the first event. */
export interface AuditHead {
  sequence: number;
  hash: string;
}

export interface AuditListQuery {
  tenantId: string;
  actor?: string;
  target?: string;
  action?: string;
  /** Only events with at >= atOrAfter. */
  atOrAfter?: number;
  /** Only events with at < before. */
  before?: number;
  /** Only events with a larger sequence (keyset pagination). */
  afterSequence: number;
  limit: number;
}

/** Appending to the trail: every flow that records an event (see ./errors.ts for the errors every method may throw). */
export interface AuditAppender {
  /**
   * Appends the event `build` makes from the chain's current head, which must
   * have sequence head.sequence + 1 and prevHash head.hash. The head is locked
   * from read to commit, so concurrent appends (any instance, any worker) queue
   * and never fork the chain. A tenant's first append creates its head at
   * { sequence: 0, hash: AUDIT_GENESIS_HASH }. `build` must be pure: it may run
   * more than once (a transaction retried after a deadlock). An error thrown by
   * `build` propagates, appending nothing (for that call only). Concurrent
   * appends may be committed together in one transaction; each resolves only
   * once its own event is committed.
   */
  append(tenantId: string, build: (head: AuditHead) => StoredAuditEvent): Promise<StoredAuditEvent>;
}

/** Reading the trail: listing, exports and chain verification. */
export interface AuditReader {
  /** The tenant's events matching the query, by ascending sequence, at most `limit`. */
  list(query: AuditListQuery): Promise<StoredAuditEvent[]>;
  /** The chain's head as recorded, or undefined when the tenant has none. */
  head(tenantId: string): Promise<AuditHead | undefined>;
  /** The smallest tenant id above `afterTenantId` ("" for the first) that has a head or events; undefined when none. */
  nextChain(afterTenantId: string): Promise<string | undefined>;
  /** Where the chain starts after retention pruned its oldest events (the last pruned event's sequence and hash); undefined when never pruned. */
  checkpoint(tenantId: string): Promise<AuditHead | undefined>;
}

/** Retention's privilege: dropping the chain's oldest events. */
export interface AuditPruner {
  /**
   * Retention: deletes up to `limit` of the chain's oldest events, as long as they
   * are older than `before` (a prefix: it stops at the first younger event), and
   * moves the checkpoint to the last one deleted, in one transaction. The checkpoint
   * never moves back; several instances may run it at once (a run that meets
   * another returns 0 rather than throwing). Returns how many it deleted.
   */
  prune(input: { tenantId: string; before: number; limit: number }): Promise<number>;
}

export interface AuditStore extends AuditAppender, AuditReader, AuditPruner {}
