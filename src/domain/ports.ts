// The storage ports the domain depends on. Adapters live in src/store/*; each
// method's comment states its error contract. One contract suite
// (test/contract) runs against every implementation.
import type { AuditEvent } from "./audit-log.ts";
import type { Permission } from "./principal.ts";
import type { AccountState, OneTimeToken, Role, SessionRecord, Tenant, TenantSettings } from "./types.ts";

/** An account row as stored: personal fields sealed under the account's data key. */
export interface StoredAccount {
  id: string;
  tenantId: string;
  role: Role;
  state: AccountState;
  locale: string;
  emailVerified: boolean;
  profileSealed: string;
  passwordHash: string | null;
  plan: string;
  planExpiresAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface StoredIdentity {
  id: string;
  tenantId: string;
  accountId: string;
  kind: number;
  lookupHash: string;
  valueSealed: string;
  verifiedAt: number | null;
  createdAt: number;
}

/** A message to deliver, sealed under the recipient account's data key. */
export interface OutboxMessage {
  id: string;
  tenantId: string;
  accountId: string;
  kind: string;
  payloadSealed: string;
  createdAt: number;
}

export interface ClaimedMessage extends OutboxMessage {
  attempts: number;
}

/** Thrown by AccountStore.createAccount when the identity's (tenant, kind, lookup) already exists. */
export class DuplicateIdentityError extends Error {
  constructor() {
    super("identity already exists");
    this.name = "DuplicateIdentityError";
  }
}

export interface TenantStore {
  /** The tenant, or undefined. */
  get(id: string): Promise<Tenant | undefined>;
  /** Creates the tenant if no tenant has its id; never overwrites. */
  ensure(tenant: Tenant): Promise<void>;
  /** Creates the tenant; false, writing nothing, when a tenant has its id. */
  create(tenant: Tenant): Promise<boolean>;
  /** Up to `limit` tenants in id order, starting after `afterId` when given (keyset pagination). */
  list(input: { afterId?: string; limit: number }): Promise<Tenant[]>;
  /**
   * Reads the tenant, applies `change` and writes its result only if nobody
   * wrote the tenant in between (compare-and-set; re-read and retried on a
   * conflict), so concurrent updates never lose one another. Returns the tenant
   * as written; undefined when it does not exist. An error thrown by `change`
   * propagates, writing nothing.
   */
  update(id: string, change: (current: Tenant) => { name: string; settings: TenantSettings }): Promise<Tenant | undefined>;
}

/** A service API key as stored, without its secret or the secret's hash. */
export interface StoredApiKey {
  id: string;
  tenantId: string;
  name: string;
  permissions: Permission[];
  createdAt: number;
  revokedAt: number | null;
  /** The actor who created it, as the audit trail names actors. */
  createdBy: string;
}

export interface ApiKeyStore {
  /** Stores a new key under hashSecret(secret); the hash is unique (a repeat throws). */
  create(key: StoredApiKey, secretHash: string): Promise<void>;
  /** The key whose secret hashes to `secretHash`, revoked or not; undefined when none. */
  findBySecretHash(secretHash: string): Promise<StoredApiKey | undefined>;
  /** The key, or undefined. */
  get(id: string): Promise<StoredApiKey | undefined>;
  /** Up to `limit` of the tenant's keys, oldest first, revoked ones included. */
  list(tenantId: string, limit: number): Promise<StoredApiKey[]>;
  /**
   * Revokes the key at `at`; revoking again keeps the first time. Returns the key
   * and its secret hash (to drop it from caches), or undefined when there is none.
   */
  revoke(id: string, at: number): Promise<{ key: StoredApiKey; secretHash: string } | undefined>;
}

/** Filters and position of a page of a tenant's accounts (AccountStore.listAccounts). */
export interface AccountListQuery {
  tenantId: string;
  role?: Role;
  state?: AccountState;
  plan?: string;
  /** Only accounts created at or after this time. */
  createdAtOrAfter?: number;
  /** Only accounts created before this time. */
  createdBefore?: number;
  /** Only accounts after this (createdAt, id) position. */
  after?: { createdAt: number; id: string };
  limit: number;
}

/** What AccountStore.updateAccount changes; absent fields stay as they are. */
export interface AccountUpdate {
  role?: Role;
  state?: AccountState;
  plan?: string;
  planExpiresAt?: number | null;
}

export interface AccountStore {
  /**
   * Creates an account with its wrapped data key and first identity, queues
   * messages and records consents given on the sign-up form, in one transaction.
   * Throws DuplicateIdentityError (and writes nothing) when the identity exists.
   * The key goes to the key store first: a key without an account is harmless
   * (and removed when the transaction fails), an account without a key is not.
   */
  createAccount(input: { account: StoredAccount; wrappedKey: string; identity: StoredIdentity; messages: OutboxMessage[]; consents?: StoredConsent[] }): Promise<void>;
  /**
   * The identity with this blind index in the tenant, with its account and wrapped
   * key (from the key store); undefined if none, or when the account has no key.
   */
  findByIdentity(tenantId: string, kind: number, lookupHash: string): Promise<{ identity: StoredIdentity; account: StoredAccount; wrappedKey: string } | undefined>;
  /**
   * The account and its wrapped data key (one more point read, in the key store),
   * or undefined when it does not exist in this tenant or has no key: an account
   * whose key is gone (erased) is gone.
   */
  getAccount(tenantId: string, accountId: string): Promise<{ account: StoredAccount; wrappedKey: string } | undefined>;
  /** The account's identities, oldest first. */
  listIdentities(accountId: string): Promise<StoredIdentity[]>;
  /** Sets the account's role and update time; false when the account is not in the tenant. */
  setRole(input: { tenantId: string; accountId: string; role: Role; at: number }): Promise<boolean>;
  /** How many accounts of the tenant have `role` (and `state`, when given); an index range, not a scan. */
  countAccounts(input: { tenantId: string; role: Role; state?: AccountState }): Promise<number>;
  /**
   * Up to `limit` of the tenant's accounts matching every filter given, with their
   * wrapped keys, in (createdAt, id) order, after `query.after` when given (keyset
   * pagination: accounts created meanwhile never shift a page). Each filter is an
   * index range (src/store/sql/account-admin-store.ts), never a scan.
   */
  listAccounts(query: AccountListQuery): Promise<Array<{ account: StoredAccount; wrappedKey: string }>>;
  /**
   * Changes the account's role, state or subscription in one transaction: locks it
   * (after the default tenant's super admins, so last-super-admin checks never
   * race), calls `change` with the locked row and the number of OTHER active super
   * admins of the default tenant (0 for other tenants), and writes what it returns
   * with updated_at = `at`. An error thrown by `change` propagates, writing nothing.
   * Returns the account as written; undefined (calling nothing) when it is not in the tenant.
   */
  updateAccount(input: {
    tenantId: string;
    accountId: string;
    at: number;
    change: (current: StoredAccount, otherActiveSuperAdmins: number) => AccountUpdate;
  }): Promise<{ account: StoredAccount; wrappedKey: string } | undefined>;
  /**
   * Marks the identity verified and moves the account to `state` (and email_verified),
   * atomically. Returns false when the identity does not exist.
   */
  markIdentityVerified(input: { identityId: string; accountId: string; at: number; state: AccountState }): Promise<boolean>;
  /** Replaces the password hash (after a rehash or a change). */
  setPasswordHash(accountId: string, passwordHash: string, at: number): Promise<void>;
  /**
   * Deletes one of the account's identities, never its last verified one: the
   * check and the delete happen in one transaction under the account row's lock,
   * so two concurrent removals cannot both pass. Returns "not_found" (changing
   * nothing) when the account has no identity with that id, "last_verified"
   * (changing nothing) when it is the account's only verified identity.
   */
  removeIdentity(input: { accountId: string; identityId: string; at: number }): Promise<"removed" | "not_found" | "last_verified">;
  /**
   * Deletes up to `limit` of the tenant's accounts still pending verification and
   * created before `createdBefore`, oldest first, each with its data key, identities
   * and outbox messages in one transaction. An account verified meanwhile is kept;
   * one another run deleted first is skipped, so several instances may run it at
   * once. Returns the ids it deleted (fewer than `limit`: nothing more is due).
   */
  purgeUnverified(input: { tenantId: string; createdBefore: number; limit: number }): Promise<string[]>;
  /**
   * Erases the account, in one main-database transaction: locks it (after the
   * default tenant's super admins, as updateAccount does), calls `check` (which
   * may throw, erasing nothing) with the locked row and the number of OTHER active
   * super admins of the default tenant, destroys its data key and records the
   * erasure in the key store's ledger (KeyStore.erase, committed before the rows
   * go: a failure after it leaves rows nobody can decrypt, which the ledger
   * replay deletes), then deletes every row about it (every per-account table).
   * Returns the erased account; undefined (calling nothing) when it is not in the tenant.
   */
  eraseAccount(input: { tenantId: string; accountId: string; at: number; check?: (current: StoredAccount, otherActiveSuperAdmins: number) => void }): Promise<StoredAccount | undefined>;
  /** Deletes every row about these accounts (the ledger replay); returns the ids that had rows. */
  deleteAccountRows(accountIds: string[]): Promise<string[]>;
  /**
   * Replaces the sealed profile and the locale and sets updated_at to `at`, only
   * while the stored profile is still `expectedProfileSealed` (a sealed profile
   * never repeats — fresh IV — so it versions the row). Returns false, writing
   * nothing, when it changed since it was read or the account is not in the tenant.
   */
  updateProfile(input: { tenantId: string; accountId: string; expectedProfileSealed: string; profileSealed: string; locale: string; at: number }): Promise<boolean>;
  /**
   * Points the account's email identity at a new address (lookup hash, sealed value,
   * verified at `at`), stores the profile sealed with the new address (and
   * email_verified), and queues messages, in one transaction. Returns false, writing
   * nothing, when the identity is not the account's or the stored profile is no longer
   * `previousProfileSealed` (changed meanwhile: re-read and retry). Throws
   * DuplicateIdentityError, writing nothing, when another identity has the lookup hash.
   */
  changeEmail(input: {
    accountId: string;
    identityId: string;
    lookupHash: string;
    valueSealed: string;
    previousProfileSealed: string;
    profileSealed: string;
    at: number;
    messages: OutboxMessage[];
  }): Promise<boolean>;
}

export interface OutboxStore {
  /** Queues messages (outside an account creation). */
  enqueue(messages: OutboxMessage[]): Promise<void>;
  /**
   * Leases up to `limit` due messages to `owner` for `leaseMs`. A message is
   * never leased to two owners at once; an expired lease can be taken over.
   */
  claimDue(input: { now: number; limit: number; owner: string; leaseMs: number }): Promise<ClaimedMessage[]>;
  /** Records a successful delivery and drops the payload. */
  markSent(id: string, owner: string, at: number): Promise<void>;
  /** Records a failed attempt; `nextAttemptAt` null means give up (status "failed"). */
  markFailed(id: string, owner: string, error: string, nextAttemptAt: number | null): Promise<void>;
  /**
   * Deletes up to `limit` of the tenant's messages that were sent or given up on
   * ("sent", "failed") and created before `createdBefore`, oldest first (an index
   * range); pending ones are never touched. Returns how many it deleted (fewer than
   * `limit`: nothing more is due). Idempotent: several instances may run it at once.
   */
  purgeDelivered(input: { tenantId: string; createdBefore: number; limit: number }): Promise<number>;
  /**
   * Up to `limit` of the account's messages in the tenant, by ascending id (oldest
   * first), after `afterId` when given — what was sent to the person, never the payloads.
   */
  listForAccount(input: { tenantId: string; accountId: string; afterId?: string; limit: number }): Promise<OutboxEntry[]>;
}

/** A message's record without its payload (the data export lists them). */
export interface OutboxEntry {
  id: string;
  kind: string;
  /** "pending", "sent" or "failed". */
  status: string;
  attempts: number;
  createdAt: number;
  sentAt: number | null;
}

/** An audit event as stored: exactly the event the domain hashed (see audit-log.ts). */
export type StoredAuditEvent = AuditEvent;

/** The prevHash of a chain's first event: a chain starts at { sequence: 0, hash: AUDIT_GENESIS_HASH }. */
export const AUDIT_GENESIS_HASH = "0".repeat(64);

/** The end of one tenant's audit chain; sequence 0 before the first event. */
export interface AuditHead {
  sequence: number;
  hash: string;
}

export interface AuditListQuery {
  tenantId: string;
  actor?: string;
  target?: string;
  action?: string;
  /** Only events with at >= atOrAfter. */
  atOrAfter?: number;
  /** Only events with at < before. */
  before?: number;
  /** Only events with a larger sequence (keyset pagination). */
  afterSequence: number;
  limit: number;
}

/** The audit trail's storage: append-only, one hash chain per tenant. */
export interface AuditStore {
  /**
   * Appends the event `build` makes from the chain's current head, which must
   * have sequence head.sequence + 1 and prevHash head.hash. The head is locked
   * from read to commit, so concurrent appends (any instance, any worker) queue
   * and never fork the chain. A tenant's first append creates its head at
   * { sequence: 0, hash: AUDIT_GENESIS_HASH }. `build` must be pure: it may run
   * more than once (a transaction retried after a deadlock).
   */
  append(tenantId: string, build: (head: AuditHead) => StoredAuditEvent): Promise<StoredAuditEvent>;
  /** The tenant's events matching the query, by ascending sequence, at most `limit`. */
  list(query: AuditListQuery): Promise<StoredAuditEvent[]>;
  /** The chain's head as recorded, or undefined when the tenant has none. */
  head(tenantId: string): Promise<AuditHead | undefined>;
  /** The smallest tenant id above `afterTenantId` ("" for the first) that has a head or events; undefined when none. */
  nextChain(afterTenantId: string): Promise<string | undefined>;
  /** Where the chain starts after retention pruned its oldest events (the last pruned event's sequence and hash); undefined when never pruned. */
  checkpoint(tenantId: string): Promise<AuditHead | undefined>;
  /**
   * Retention: deletes up to `limit` of the chain's oldest events, as long as they
   * are older than `before` (a prefix: it stops at the first younger event), and
   * moves the checkpoint to the last one deleted, in one transaction. The checkpoint
   * never moves back; several instances may run it at once. Returns how many it deleted.
   */
  prune(input: { tenantId: string; before: number; limit: number }): Promise<number>;
}

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

/** Consent decisions: append-only, one row per decision. */
export interface ConsentStore {
  /** Records the decisions, all or none (one transaction). */
  append(consents: StoredConsent[]): Promise<void>;
  /**
   * Up to `limit` of the account's decisions, newest first (by recordedAt, then
   * id), strictly older than `before` when given. Only rows of `tenantId`.
   */
  history(input: { tenantId: string; accountId: string; limit: number; before?: ConsentCursor }): Promise<StoredConsent[]>;
  /** The account's newest decision for each purpose, by purpose name. */
  current(tenantId: string, accountId: string): Promise<StoredConsent[]>;
}

/** A wrapped data key as the key store holds it. */
export interface StoredDataKey {
  accountId: string;
  tenantId: string;
  /** "<kek id>.<AES-GCM of the data key under that KEK>" (src/crypto/keyring.ts). */
  wrappedKey: string;
  createdAt: number;
}

/** One erased account, as the erasure ledger records it (ids only: no personal data). */
export interface ErasureRecord {
  accountId: string;
  tenantId: string;
  erasedAt: number;
}

/**
 * The key store: every account's wrapped data key, and the erasure ledger. It
 * can be a database of its own (KEYSTORE_MYSQL_URL; embedded: keys.sqlite), with
 * its own backup policy: a copy of the main database without the key store
 * reveals no personal data, and restoring the main database never rolls back
 * the ledger.
 */
export interface KeyStore {
  /** The account's wrapped data key; undefined when it has none (erased, purged, or never created). */
  get(accountId: string): Promise<string | undefined>;
  /** The wrapped keys of these accounts that have one, by account id (one IN query). */
  getMany(accountIds: string[]): Promise<Map<string, string>>;
  /** Stores a new account's key; throws when the account already has one. */
  put(key: StoredDataKey): Promise<void>;
  /** Deletes these accounts' keys (absent ones are ignored); the ledger is not touched. */
  delete(accountIds: string[]): Promise<void>;
  /** Up to `limit` keys in account id order, after `afterAccountId` ("" for the first): a batch of a rotation. */
  list(input: { afterAccountId: string; limit: number }): Promise<StoredDataKey[]>;
  /**
   * Replaces the account's wrapped key only while it is still `expected`
   * (compare-and-set); false, writing nothing, when it changed or is gone.
   */
  replace(input: { accountId: string; expected: string; wrappedKey: string }): Promise<boolean>;
  /**
   * Destroys the account's key and records it in the erasure ledger, in one
   * transaction. Idempotent: erasing again keeps the first record.
   */
  erase(record: ErasureRecord): Promise<void>;
  /** Up to `limit` ledger records in account id order, after `afterAccountId` ("" for the first). */
  listErased(input: { afterAccountId: string; limit: number }): Promise<ErasureRecord[]>;
  ping(): Promise<boolean>;
}

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

export interface TokenStore {
  /** Stores a single-use token under its hash until ttlMs passes. */
  put(tokenHash: string, token: OneTimeToken, ttlMs: number): Promise<void>;
  /** Returns and deletes the token atomically: two concurrent takes never both succeed. */
  take(tokenHash: string): Promise<OneTimeToken | undefined>;
  /** Returns the token without using it. */
  peek(tokenHash: string): Promise<OneTimeToken | undefined>;
}

export interface RateLimitResult {
  allowed: boolean;
  /** When not allowed: milliseconds until the next attempt can succeed. */
  retryAfterMs: number;
}

export interface RateLimiter {
  /** Counts one attempt against `key` in the fixed window; allowed while within `limit`. */
  consume(key: string, limit: number, windowMs: number): Promise<RateLimitResult>;
}

/** Tells every instance (and worker) that sessions ended, so caches drop them at once. */
export interface InvalidationBus {
  publish(tokenHashes: string[]): Promise<void>;
  subscribe(onInvalidate: (tokenHashes: string[]) => void): Promise<void>;
}

/** Everything ephemeral: Redis in production, in-process for the embedded default. */
export interface EphemeralStores {
  sessions: SessionStore;
  tokens: TokenStore;
  rateLimiter: RateLimiter;
  invalidation: InvalidationBus;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface DurableStores {
  tenants: TenantStore;
  accounts: AccountStore;
  apiKeys: ApiKeyStore;
  outbox: OutboxStore;
  audit: AuditStore;
  consents: ConsentStore;
  /** Wrapped data keys and the erasure ledger; a separate database when configured. */
  keys: KeyStore;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
