// The bus that tells every instance (and worker) what to drop from its caches
// (src/domain/invalidated-cache.ts): Redis pub/sub in production, an in-process
// emitter for the embedded default.

/**
 * What to drop: ended sessions by token hash, every session of an account (a
 * role change, a deactivation, an erasure), everything cached about a tenant
 * (its settings changed), a revoked API key, or everything ("all").
 */
export type Invalidation =
  | { kind: "session"; tokenHashes: string[] }
  | { kind: "account"; accountId: string }
  | { kind: "tenant"; tenantId: string }
  | { kind: "apiKey"; secretHash: string }
  | { kind: "all" };

export interface InvalidationSubscriber {
  /** Messages published by any instance, this one included. */
  invalidate(messages: readonly Invalidation[]): void;
  /**
   * The subscription went down (false: messages may be missed from now on) or
   * is receiving again (true: messages may have been missed meanwhile).
   */
  subscribed(subscribed: boolean): void;
}

/** Tells every instance (and worker) what changed, so caches drop it at once (see ./errors.ts for the errors every method may throw). */
export interface InvalidationBus {
  /** Reaches every subscriber, this instance's included; nothing when the list is empty; throws unavailable when the bus is down. */
  publish(messages: readonly Invalidation[]): Promise<void>;
  /** Starts delivering to `subscriber`; resolves once subscribed. */
  subscribe(subscriber: InvalidationSubscriber): Promise<void>;
}
