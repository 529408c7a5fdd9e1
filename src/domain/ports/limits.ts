// Counting attempts for rate limits.

export interface RateLimitResult {
  allowed: boolean;
  /** When not allowed: milliseconds until the next attempt can succeed. */
  retryAfterMs: number;
}

/** One counter of a rate-limit group: `field` names it within the group ("" for the group's own). */
export interface RateCounter {
  field: string;
  limit: number;
  /** Fixed windows of this length, numbered from the injected clock. */
  windowMs: number;
}

/** Fixed-window counters (see ./errors.ts for the errors every method may throw). */
export interface RateLimiter {
  /**
   * Counts one attempt on every counter of `group` in one atomic step: one
   * round trip, one Redis Cluster slot (the group is the hash tag), in the
   * windows of `at` (default now). Results come in the order of `counters`.
   */
  hit(group: string, counters: readonly RateCounter[], at?: number): Promise<RateLimitResult[]>;
  /**
   * Takes back one attempt that hit counted `at` on these counters (each
   * floored at 0, one atomic step): the windows are those of `at`, not of now,
   * so a refund after a window boundary takes back the count it meant to.
   */
  refund(group: string, counters: readonly RateCounter[], at: number): Promise<void>;
  /** The clock the windows are numbered from (`at` for hit and refund). */
  now(): number;
  /** Forgets every count of `group` (all fields) in the windows of these lengths current now. */
  reset(group: string, windowsMs: readonly number[]): Promise<void>;
}
