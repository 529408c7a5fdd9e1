// Counting attempts for rate limits.

export interface RateLimitResult {
  allowed: boolean;
  /** When not allowed: milliseconds until the next attempt can succeed. */
  retryAfterMs: number;
}

/** Fixed-window counters (see ./errors.ts for the errors every method may throw). */
export interface RateLimiter {
  /** Counts one attempt against `key` in the fixed window; allowed while within `limit`. */
  consume(key: string, limit: number, windowMs: number): Promise<RateLimitResult>;
}
