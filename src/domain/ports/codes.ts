// Pending one-time codes sent to a phone (sign-in, adding a phone), kept in the
// ephemeral store under a key naming their purpose and destination; the code
// itself only as a keyed hash. Single use and attempt-limited, atomically.
/** A code waiting to be typed back. */
export interface PendingCode {
  /** Keyed hash of the code (src/domain/phone-codes.ts): the store never holds the digits. */
  codeHash: string;
  tenantId: string;
  /** The account the code adds a phone to; "" for a sign-in code. */
  accountId: string;
  /** When the code stops working (the store also forgets it then). */
  expiresAt: number;
}

/** What one attempt at a pending code found. */
export type CodeAttempt = { outcome: "match"; code: PendingCode } | { outcome: "mismatch"; attemptsLeft: number } | { outcome: "none" };

/** Pending codes by key (see ./errors.ts for the errors every method may throw). */
export interface CodeStore {
  /** Stores the code under `key` until ttlMs passes, replacing any code pending there (and its attempt count). */
  put(key: string, code: PendingCode, ttlMs: number): Promise<void>;
  /**
   * One attempt at the code under `key`, atomically: "match" when `codeHash` is
   * the pending code's — which is deleted (single use: of concurrent attempts
   * with the right code exactly one matches); otherwise "mismatch", counting the
   * attempt and deleting the code once `maxAttempts` attempts failed; "none" when
   * nothing is pending (never sent, expired, used, or deleted after too many
   * failed attempts).
   */
  attempt(key: string, codeHash: string, maxAttempts: number): Promise<CodeAttempt>;
}
