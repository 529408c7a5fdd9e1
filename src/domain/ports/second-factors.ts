import type { DomainEvent } from "../events.ts";
// Second factors of an account and its recovery codes. A factor row holds its
// secret sealed under the account's data key; recovery codes only as keyed
// hashes. Erasure deletes both with the account (src/store/sql/account-tables.ts).

/** A second factor as stored; pending (confirmedAt null) until its enrollment is confirmed. */
export interface StoredSecondFactor {
  id: string;
  tenantId: string;
  accountId: string;
  /** SecondFactorKind (TOTP). */
  kind: number;
  /** The secret, sealed under the account's data key. */
  secretSealed: string;
  createdAt: number;
  confirmedAt: number | null;
  /** The last TOTP step accepted (a code is accepted only for a later step); null when none was. */
  lastUsedStep: number | null;
  lastUsedAt: number | null;
}

/** Second factors and recovery codes (see ./errors.ts for the errors every method may throw). */
export interface SecondFactorStore {
  /** The account's factors, pending ones included, oldest first. */
  list(accountId: string): Promise<StoredSecondFactor[]>;
  /** Whether the account has a confirmed factor (one indexed read: every password sign-in asks). */
  hasConfirmed(accountId: string): Promise<boolean>;
  /** Stores a pending factor, replacing the account's other pending ones. */
  putPending(factor: StoredSecondFactor): Promise<void>;
  /**
   * Confirms a pending factor accepted at `step` and replaces the account's
   * recovery codes, in one transaction; false (nothing written) when the
   * factor is not pending any more (confirmed meanwhile, or replaced).
   */
  confirm(input: {
    accountId: string;
    factorId: string;
    at: number;
    step: number;
    recoveryCodeHashes: readonly string[];
    events?: readonly DomainEvent[];
  }): Promise<boolean>;
  /** Records `step` as the factor's last used, only if it is later than the last one (compare-and-set); false otherwise. */
  useStep(accountId: string, factorId: string, step: number, at: number): Promise<boolean>;
  /**
   * Deletes a confirmed factor; when it was the account's last one, the
   * recovery codes go too (same transaction). False when there was none.
   */
  remove(accountId: string, factorId: string, events?: readonly DomainEvent[]): Promise<boolean>;
  /** Replaces every recovery code of the account. */
  replaceRecoveryCodes(accountId: string, hashes: readonly string[], at: number, events?: readonly DomainEvent[]): Promise<void>;
  /** Marks an unused code as used (compare-and-set); false when there is none unused with this hash. */
  useRecoveryCode(accountId: string, hash: string, at: number): Promise<boolean>;
  /** How many unused recovery codes the account has. */
  countRecoveryCodes(accountId: string): Promise<number>;
}
