// Session storage (Redis in production, in-process for the embedded default).
// The bus that tells every instance which sessions ended is ./invalidation.ts.
import type { SessionRecord } from "../types.ts";

/** Live sessions, by token hash (see ./errors.ts for the errors every method may throw). */
export interface SessionStore {
  /** Stores a new session under the hash of its token; it disappears after ttlMs. */
  create(tokenHash: string, session: SessionRecord, ttlMs: number): Promise<void>;
  /** The live session, or undefined (unknown, expired or revoked). */
  get(accountId: string, tokenHash: string): Promise<SessionRecord | undefined>;
  /** Ends the session; false when it was not there (already ended). */
  delete(accountId: string, tokenHash: string): Promise<boolean>;
  /**
   * Replaces a live session's record and sets its TTL to ttlMs (a refresh).
   * Returns false, writing nothing, when the session is gone (ended or
   * expired): a refresh never brings an ended session back.
   */
  touch(accountId: string, tokenHash: string, session: SessionRecord, ttlMs: number): Promise<boolean>;
  /** The account's live sessions with their token hashes. */
  listForAccount(accountId: string): Promise<Array<{ tokenHash: string; session: SessionRecord }>>;
  /** Ends every session of the account except `keepTokenHash`; returns the ended token hashes. */
  deleteAllForAccount(accountId: string, keepTokenHash?: string): Promise<string[]>;
}
