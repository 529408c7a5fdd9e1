// Domain events and webhooks (migration 0010): events written in the
// transactions of the changes (through the account ports' `events`), numbered
// and fanned out to webhooks by one dispatcher at a time, delivered by workers
// holding per-row leases. See ./errors.ts for the errors every method may throw.
import type { DomainEvent, SequencedEvent } from "../events.ts";

/** A tenant's webhook endpoint; its secret is sealed (only delivery opens it). */
export interface StoredWebhook {
  id: string;
  tenantId: string;
  url: string;
  /** Kinds it receives; empty: every kind. */
  eventTypes: string[];
  /** The signing secret sealed under the key-encryption key (Keyring.sealSecret). */
  secretSealed: string;
  createdAt: number;
  updatedAt: number;
}

export interface WebhookDelivery {
  id: string;
  tenantId: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  accountId: string | null;
  sequence: number;
  /** "pending", "delivered" or "failed". */
  status: string;
  attempts: number;
  nextAttemptAt: number;
  /** The last failure's codes ("HTTP 503", "ECONNREFUSED", "TIMEOUT"); empty when none. */
  lastError: string;
  createdAt: number;
  deliveredAt: number | null;
  /** When it was queued, or last requeued: its maximum age counts from here. */
  queuedAt: number;
}

/** A delivery leased to a worker, with what it sends. */
export interface ClaimedDelivery extends WebhookDelivery {
  event: DomainEvent;
  webhook: StoredWebhook;
}

export interface EventStore {
  /** Appends events outside any account change (sessions live in another store); all or none. */
  append(events: DomainEvent[]): Promise<void>;
  /**
   * Numbers up to `limit` unnumbered events, oldest first, after the highest
   * number given so far, and queues one delivery per webhook of their tenant
   * subscribed to their kind, in one transaction. Only one dispatcher may run
   * it at a time (a lease). Returns how many it numbered.
   */
  sequence(input: { limit: number; now: number; newId: () => string }): Promise<number>;
  /** Up to `limit` numbered events of the tenant after `afterSequence`, by number; of `types` only when given. */
  readAfter(input: { tenantId: string; afterSequence: number; types?: readonly string[]; limit: number }): Promise<SequencedEvent[]>;
  /** The highest number given in the tenant so far (0 for none): where a stream starts "from now". */
  lastSequence(tenantId: string): Promise<number>;
  /**
   * Retention: deletes up to `limit` of the tenant's oldest numbered events made
   * before `createdBefore`, as a prefix of its stream — stopping at the first event
   * that is newer or that a delivery still needs (pending or failed, which may be
   * requeued) — with their delivered deliveries, and raises the tenant's
   * purgedThrough. Returns how many it deleted.
   */
  purgeDelivered(input: { tenantId: string; createdBefore: number; limit: number }): Promise<number>;
  /** The highest event number retention deleted in the tenant (0 for none): a cursor below it lost events. */
  purgedThrough(tenantId: string): Promise<number>;
  /** Up to `limit` events about the account in the tenant, oldest first (by id), after `afterId` when given: the data export. */
  listForAccount(input: { tenantId: string; accountId: string; afterId?: string; limit: number }): Promise<DomainEvent[]>;
}

export interface WebhookStore {
  create(webhook: StoredWebhook): Promise<void>;
  get(tenantId: string, id: string): Promise<StoredWebhook | undefined>;
  /** The tenant's webhooks, oldest first. */
  list(tenantId: string): Promise<StoredWebhook[]>;
  /** Replaces url and event types; undefined when it is not the tenant's. */
  update(input: { tenantId: string; id: string; url: string; eventTypes: string[]; at: number }): Promise<StoredWebhook | undefined>;
  /** Deletes it and its deliveries; false when it was not the tenant's. */
  delete(tenantId: string, id: string): Promise<boolean>;
  /**
   * Leases up to `limit` due deliveries — each only when no earlier delivery of
   * the same webhook about the same account is still pending (in order per
   * account) — to `owner` for `leaseMs`.
   */
  claimDue(input: { now: number; limit: number; owner: string; leaseMs: number }): Promise<ClaimedDelivery[]>;
  markDelivered(id: string, owner: string, at: number): Promise<void>;
  /** A failed attempt: retried at `nextAttemptAt`, or given up on (status "failed") when null. No-op without the lease. */
  markFailed(id: string, owner: string, error: string, nextAttemptAt: number | null, at: number): Promise<void>;
  /** The webhook's deliveries, newest event first (by number), before `beforeSequence` when given. */
  listDeliveries(input: { tenantId: string; webhookId: string; status?: string; beforeSequence?: number; limit: number }): Promise<WebhookDelivery[]>;
  /** Puts a failed (or delivered) delivery back in the queue as new; false when it is not the webhook's. */
  requeue(input: { tenantId: string; webhookId: string; deliveryId: string; now: number }): Promise<boolean>;
}
