// The error contract every port shares, so each method's comment only names
// what is particular to it. Adapters (src/store/*) translate their drivers'
// errors into these themselves; nothing above src/store/ inspects a driver error.
import { DomainError } from "../errors.ts";

/**
 * Every port method may throw, besides what its own comment names:
 * - `unavailable` (reason BACKEND_UNAVAILABLE) when its backend cannot be
 *   reached, timed out, or kept aborting the transaction (deadlock, lock wait)
 *   after the adapter's own retries — a retry later may succeed;
 * - `already_exists` (reason ALREADY_EXISTS) when a write hits a unique key the
 *   method does not name a result for.
 * Anything else is a bug and surfaces as Internal.
 */
export const BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE";
export const ALREADY_EXISTS = "ALREADY_EXISTS";
/** How long a client should wait before retrying a call a backend outage failed. */
export const BACKEND_RETRY_MS = 1000;

/** A backend could not be reached or kept aborting; `cause` is kept for the log (the edge logs it), never sent. */
export function backendUnavailable(cause: unknown): DomainError {
  return new DomainError("unavailable", BACKEND_UNAVAILABLE, "a backend is unavailable; retry later", { cause, retryAfterMs: BACKEND_RETRY_MS });
}

/** A write hit a unique key; `cause` is kept for the log. */
export function alreadyExists(cause: unknown, message = "already exists"): DomainError {
  return new DomainError("already_exists", ALREADY_EXISTS, message, { cause });
}
