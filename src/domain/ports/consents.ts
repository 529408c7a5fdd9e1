// Consent decisions: append-only, one row per decision.
import type { DomainEvent } from "../events.ts";

/** One consent decision as recorded. */
export interface StoredConsent {
  id: string;
  tenantId: string;
  accountId: string;
  /** "terms", "privacy_policy", "marketing", "analytics" or a tenant-defined slug. */
  purpose: string;
  /** The policy version the decision is about. */
  version: string;
  /** True when granted, false when withdrawn. */
  granted: boolean;
  /** The client it was recorded through (its user agent). */
  client: string;
  recordedAt: number;
}

/** Where the history of an account's consent decisions starts after (keyset pagination, newest first). */
export interface ConsentCursor {
  recordedAt: number;
  id: string;
}

/** Consent decisions (see ./errors.ts for the errors every method may throw). */
export interface ConsentStore {
  /** Records the decisions, all or none (one transaction); a repeated id throws already_exists, writing nothing. */
  append(consents: StoredConsent[], events?: readonly DomainEvent[]): Promise<void>;
  /**
   * Up to `limit` of the account's decisions, newest first (by recordedAt, then
   * id), strictly older than `before` when given. Only rows of `tenantId`.
   */
  history(input: { tenantId: string; accountId: string; limit: number; before?: ConsentCursor }): Promise<StoredConsent[]>;
  /** The account's newest decision for each purpose, by purpose name. */
  current(tenantId: string, accountId: string): Promise<StoredConsent[]>;
}
