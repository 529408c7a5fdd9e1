// Single-use tokens (verification links, reset and email-change codes), stored by hash.
import type { OneTimeToken } from "../types.ts";

/** Single-use tokens (see ./errors.ts for the errors every method may throw). */
export interface TokenStore {
  /** Stores a single-use token under its hash until ttlMs passes (replacing one under the same hash). */
  put(tokenHash: string, token: OneTimeToken, ttlMs: number): Promise<void>;
  /** Returns and deletes the token atomically: two concurrent takes never both succeed. Undefined when absent or expired. */
  take(tokenHash: string): Promise<OneTimeToken | undefined>;
  /** Returns the token without using it; undefined when absent or expired. */
  peek(tokenHash: string): Promise<OneTimeToken | undefined>;
}
