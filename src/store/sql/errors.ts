// MySQL/MariaDB (mysql2) and SQLite (node:sqlite) errors as the domain's error
// kinds. Recognised by error numbers and codes, never by message text.
import { alreadyExists, backendUnavailable } from "../../domain/ports/errors.ts";
import { isUniqueViolation } from "./database.ts";

interface DriverError {
  errno?: number;
  code?: string;
  errcode?: number;
  fatal?: boolean;
}

/** Network and pool failures: the database could not be reached, or the connection broke or timed out. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_CON_COUNT_ERROR",
  "ER_SERVER_SHUTDOWN",
  "POOL_CLOSED",
]);

/** MySQL ER_LOCK_DEADLOCK (1213), ER_LOCK_WAIT_TIMEOUT (1205), ER_QUERY_TIMEOUT (3024), ER_STATEMENT_TIMEOUT (1969, MariaDB). */
const ABORTED_ERRNOS = new Set([1213, 1205, 3024, 1969]);
/** SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes (the low byte). */
const SQLITE_ABORTED = new Set([5, 6]);

/** True when a transaction was aborted by a lock conflict or timeout: a retry later may succeed. */
export function isLockConflict(error: unknown): boolean {
  const e = error as DriverError | null;
  if (!e || typeof e !== "object") return false;
  return (e.errno !== undefined && ABORTED_ERRNOS.has(e.errno)) || (e.errcode !== undefined && SQLITE_ABORTED.has(e.errcode & 0xff));
}

/** True when the database could not be reached or the connection failed. */
export function isConnectionFailure(error: unknown): boolean {
  const e = error as DriverError | null;
  if (!e || typeof e !== "object") return false;
  // mysql2 marks every error that broke the connection as fatal.
  return (e.code !== undefined && CONNECTION_CODES.has(e.code)) || e.fatal === true;
}

/** A SQL driver error as the domain's error kind; anything else unchanged. */
export function translateSqlError(error: unknown): unknown {
  if (isUniqueViolation(error)) return alreadyExists(error);
  if (isLockConflict(error) || isConnectionFailure(error)) return backendUnavailable(error);
  return error;
}

/** MySQL ER_LOCK_DEADLOCK: the server rolled the whole transaction back, so running it again is safe. */
const DEADLOCK_ERRNO = 1213;
/** How often a transaction a deadlock rolled back is run again before giving up (as `unavailable`). */
export const DEADLOCK_ATTEMPTS = 4;

/** True when the server chose this transaction as a deadlock's victim (SQLite: the database was busy). */
export function isDeadlock(error: unknown): boolean {
  const e = error as DriverError | null;
  if (!e || typeof e !== "object") return false;
  return e.errno === DEADLOCK_ERRNO || (e.errcode !== undefined && (e.errcode & 0xff) === 5);
}

/**
 * Runs a transaction, again (after a short random pause) when a deadlock rolled
 * it back: two concurrent role changes must not fail one of them. Only for
 * transactions whose every effect is inside the database (no key-store write, no
 * message sent): a rolled-back attempt then left nothing behind.
 */
export async function withDeadlockRetry<T>(run: () => Promise<T>, attempts = DEADLOCK_ATTEMPTS): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= attempts || !isDeadlock(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
}
