// Account and identity storage, split by privilege (Kratos' Pool/PrivilegedPool):
// reads; ordinary writes an account's own flows make; erasure and purges, which
// destroy data and keys. A factory takes only the part it uses.
import type { AccountState, Role, SubscriptionStatus } from "../types.ts";
import type { StoredConsent } from "./consents.ts";
import type { DomainEvent } from "../events.ts";
import type { OutboxMessage } from "./outbox.ts";
import type { RevocationReason, RevocationRequest } from "./revocations.ts";

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
  planStatus: SubscriptionStatus;
  planRenews: boolean;
  /** The period end a renewal reminder was sent for (once per period); null: none yet. */
  planRemindedFor: number | null;
  /** The password is an admin-issued temporary one, usable until then and to be changed at sign-in; null: none. */
  temporaryPasswordUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * One way to sign in to an account (docs/architecture.md, "Identities"): its
 * kind (IdentityKind), its value sealed under the account's data key and found
 * through a blind index unique per (tenant, kind), whether and when it was
 * verified, and for external identities their issuer.
 */
export interface StoredIdentity {
  id: string;
  tenantId: string;
  accountId: string;
  kind: number;
  lookupHash: string;
  valueSealed: string;
  /** Null while unverified; an unverified identity never signs in. */
  verifiedAt: number | null;
  createdAt: number;
  /** The issuer URL of an external (OIDC) identity; null for email, phone and guest. */
  issuer: string | null;
  /** The identity's JSON profile sealed under the account's data key; null when never set. */
  profileSealed: string | null;
}

/** Thrown by AccountWriter.createAccount / changeEmail when the identity's (tenant, kind, lookup) already exists. */
export class DuplicateIdentityError extends Error {
  constructor() {
    super("identity already exists");
    this.name = "DuplicateIdentityError";
  }
}

/** Filters and position of a page of a tenant's accounts (AccountReader.listAccounts). */
export interface AccountListQuery {
  tenantId: string;
  role?: Role;
  state?: AccountState;
  plan?: string;
  planStatus?: SubscriptionStatus;
  /** Only accounts created at or after this time. */
  createdAtOrAfter?: number;
  /** Only accounts created before this time. */
  createdBefore?: number;
  /** Only accounts after this (createdAt, id) position. */
  after?: { createdAt: number; id: string };
  limit: number;
}

/** What AccountWriter.updateAccount changes; absent fields stay as they are. */
export interface AccountUpdate {
  role?: Role;
  state?: AccountState;
  plan?: string;
  planExpiresAt?: number | null;
  planStatus?: SubscriptionStatus;
  planRenews?: boolean;
  planRemindedFor?: number | null;
  passwordHash?: string;
  temporaryPasswordUntil?: number | null;
  /** Queued with the change, in its transaction (a subscription's notices). */
  messages?: OutboxMessage[];
  /**
   * Queues the revocation of the account's sessions in the same transaction
   * (./revocations.ts), even when nothing else changes: a retried call owes it too.
   */
  endSessions?: RevocationReason;
  /** Events of the change (src/domain/events.ts), written in its transaction. */
  events?: DomainEvent[];
}

/** Every write below takes `events`: domain events of the change, written in its own transaction (src/domain/events.ts). */
type WithEvents = { events?: readonly DomainEvent[] };

/** An account with its wrapped data key (from the key store). */
export interface KeyedAccount {
  account: StoredAccount;
  wrappedKey: string;
}

/** Reading accounts and identities; never writes (see ./errors.ts for the errors every method may throw). */
export interface AccountReader {
  /**
   * The identity with this blind index in the tenant, with its account and wrapped
   * key (from the key store); undefined if none, or when the account has no key.
   */
  findByIdentity(
    tenantId: string,
    kind: number,
    lookupHash: string,
  ): Promise<{ identity: StoredIdentity; account: StoredAccount; wrappedKey: string } | undefined>;
  /**
   * The account and its wrapped data key (one more point read, in the key store),
   * or undefined when it does not exist in this tenant or has no key: an account
   * whose key is gone (erased) is gone.
   */
  getAccount(tenantId: string, accountId: string): Promise<KeyedAccount | undefined>;
  /** The account's identities, oldest first; empty when it has none (or does not exist). */
  listIdentities(accountId: string): Promise<StoredIdentity[]>;
  /** How many accounts of the tenant have `role` (and `state`, when given); an index range, not a scan. */
  countAccounts(input: { tenantId: string; role: Role; state?: AccountState }): Promise<number>;
  /**
   * Up to `limit` of the tenant's accounts matching every filter given, with their
   * wrapped keys, in (createdAt, id) order, after `query.after` when given (keyset
   * pagination: accounts created meanwhile never shift a page). Each filter is an
   * index range (src/store/sql/account-admin-store.ts), never a scan.
   */
  listAccounts(query: AccountListQuery): Promise<KeyedAccount[]>;
}

/** The writes of sign-up, verification, credentials, profile and administration. */
export interface AccountWriter {
  /**
   * Creates an account with its wrapped data key and first identity, queues
   * messages and records consents given on the sign-up form, in one transaction.
   * Throws DuplicateIdentityError (and writes nothing) when the identity exists.
   * The key goes to the key store first: a key without an account is harmless
   * (and removed when the transaction fails), an account without a key is not.
   */
  createAccount(
    input: {
      account: StoredAccount;
      wrappedKey: string;
      identity: StoredIdentity;
      messages: OutboxMessage[];
      consents?: StoredConsent[];
    } & WithEvents,
  ): Promise<void>;
  /** Sets the account's role and update time; false (writing nothing) when the account is not in the tenant. */
  setRole(input: { tenantId: string; accountId: string; role: Role; at: number } & WithEvents): Promise<boolean>;
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
    /**
     * A change applied once per key (a hash of the caller's idempotency key): the key is
     * recorded in the change's transaction; when it was recorded before, nothing is
     * changed and the account is returned as it stands with `replayed` set.
     */
    onceKey?: string;
    /** `wrappedKey`: the account's, so `change` can seal the messages it queues. */
    change: (current: StoredAccount, otherActiveSuperAdmins: number, wrappedKey: string) => AccountUpdate;
  }): Promise<(KeyedAccount & { replayed?: boolean }) | undefined>;
  /**
   * Up to `limit` ids of the tenant's accounts whose subscription period ends at or
   * before `endsBy`, after `afterId` (id order within the index range on
   * (tenant_id, plan_expires_at)): "expiry" — trials and non-renewing subscriptions
   * not yet expired; "reminder" — renewing active subscriptions ending after `notBefore`
   * not yet reminded for that period end.
   */
  listSubscriptionsDue(query: {
    tenantId: string;
    kind: "expiry" | "reminder";
    endsBy: number;
    notBefore?: number;
    afterId?: string;
    limit: number;
  }): Promise<string[]>;
  /**
   * Marks the identity verified and moves the account to `state` (and, for an email
   * identity, email_verified), atomically. Returns false (writing nothing) when the
   * identity does not exist.
   */
  markIdentityVerified(input: { identityId: string; accountId: string; at: number; state: AccountState } & WithEvents): Promise<boolean>;
  /**
   * Attaches a new identity to an existing account of the tenant, in one
   * transaction with: the deletion of the account's identities named in `retire`
   * (a guest identity, once the guest adds an email or phone), a compare-and-set
   * of the sealed profile when `profile` is given (the primary email of an account
   * that had none; `emailVerified` sets the account's flag), and `messages`.
   * Returns false, writing nothing, when the account is not in the tenant or its
   * profile is no longer `profile.expectedSealed` (re-read and retry). Throws
   * DuplicateIdentityError, writing nothing, when the (tenant, kind, lookup) is
   * taken — by any account, this one included: an identity is never moved.
   */
  addIdentity(
    input: {
      tenantId: string;
      accountId: string;
      identity: StoredIdentity;
      retire?: readonly string[];
      profile?: { expectedSealed: string; sealed: string; emailVerified: boolean };
      messages?: OutboxMessage[];
      at: number;
    } & WithEvents,
  ): Promise<boolean>;
  /** Replaces the sealed profile of one of the account's identities; false (writing nothing) when it is not the account's. */
  setIdentityProfile(input: { accountId: string; identityId: string; profileSealed: string; at: number }): Promise<boolean>;
  /**
   * Replaces the password hash (after a rehash or a change); a missing account is a no-op.
   * With `endSessions` (a new password set by its owner), queues the revocation of the
   * account's sessions in the same transaction and ends any temporary password.
   */
  setPasswordHash(accountId: string, passwordHash: string, at: number, endSessions?: RevocationRequest, events?: readonly DomainEvent[]): Promise<void>;
  /**
   * Deletes one of the account's identities, never its last verified one: the
   * check and the delete happen in one transaction under the account row's lock,
   * so two concurrent removals cannot both pass. Returns "not_found" (changing
   * nothing) when the account has no identity with that id, "last_verified"
   * (changing nothing) when it is the account's only verified identity (the last
   * way to sign in). With `profile`, the sealed profile is replaced in the same
   * transaction while it is still `profile.expectedSealed` (the primary email
   * moving to another address, or to none), else "stale", changing nothing.
   */
  removeIdentity(
    input: {
      accountId: string;
      identityId: string;
      at: number;
      profile?: { expectedSealed: string; sealed: string; emailVerified: boolean };
    } & WithEvents,
  ): Promise<"removed" | "not_found" | "last_verified" | "stale">;
  /**
   * Replaces the sealed profile and the locale and sets updated_at to `at`, only
   * while the stored profile is still `expectedProfileSealed` (a sealed profile
   * never repeats — fresh IV — so it versions the row). Returns false, writing
   * nothing, when it changed since it was read or the account is not in the tenant.
   */
  updateProfile(
    input: {
      tenantId: string;
      accountId: string;
      expectedProfileSealed: string;
      profileSealed: string;
      locale: string;
      at: number;
    } & WithEvents,
  ): Promise<boolean>;
  /**
   * Points the account's email identity at a new address (lookup hash, sealed value,
   * verified at `at`), stores the profile sealed with the new address (and
   * email_verified), and queues messages, in one transaction. Returns false, writing
   * nothing, when the identity is not the account's or the stored profile is no longer
   * `previousProfileSealed` (changed meanwhile: re-read and retry). Throws
   * DuplicateIdentityError, writing nothing, when another identity has the lookup hash.
   */
  changeEmail(
    input: {
      accountId: string;
      identityId: string;
      lookupHash: string;
      valueSealed: string;
      previousProfileSealed: string;
      profileSealed: string;
      at: number;
      messages: OutboxMessage[];
      /** Whether the new address is verified (default true); false: verified_at null and email_verified false until VerifyIdentity. */
      verified?: boolean;
    } & WithEvents,
  ): Promise<boolean>;
}

/** Destroying accounts: erasure, the ledger replay and the purge of unverified sign-ups. */
export interface AccountEraser {
  /**
   * Deletes up to `limit` of the tenant's accounts still pending verification and
   * created before `createdBefore`, oldest first, each with its data key, identities
   * and outbox messages in one transaction. An account verified meanwhile is kept;
   * one another run deleted first is skipped, so several instances may run it at
   * once. Returns the ids it deleted (fewer than `limit`: nothing more is due).
   */
  purgeUnverified(input: { tenantId: string; createdBefore: number; limit: number }): Promise<string[]>;
  /**
   * Deletes up to `limit` of the tenant's guest accounts whose guest identity was
   * created before `createdBefore` and that hold no other identity (never
   * upgraded), oldest first, each with its data key and every row about it in
   * one transaction. An account that gained another identity meanwhile is kept;
   * one another run deleted first is skipped. A guest has sessions: their
   * revocation (reason "erased", at `at`) is queued in the same transaction.
   * Returns the ids it deleted.
   */
  purgeGuests(input: { tenantId: string; createdBefore: number; limit: number; at: number }): Promise<string[]>;
  /**
   * Erases the account, in one main-database transaction: locks it (after the
   * default tenant's super admins, as updateAccount does), calls `check` (which
   * may throw, erasing nothing) with the locked row and the number of OTHER active
   * super admins of the default tenant, destroys its data key and records the
   * erasure in the key store's ledger (KeyStore.erase, committed before the rows
   * go: a failure after it leaves rows nobody can decrypt, which the ledger
   * replay deletes), then deletes every row about it (every per-account table)
   * and queues the revocation of its sessions (./revocations.ts, reason "erased").
   * Returns the erased account; undefined (calling nothing) when it is not in the tenant.
   * An account whose key is gone but whose rows remain (an erasure interrupted after
   * KeyStore.erase) is erased already: its rows are deleted and the revocation queued,
   * and it answers undefined too.
   */
  eraseAccount(
    input: {
      tenantId: string;
      accountId: string;
      at: number;
      check?: (current: StoredAccount, otherActiveSuperAdmins: number) => void;
    } & WithEvents,
  ): Promise<StoredAccount | undefined>;
  /** Deletes every row about these accounts (the ledger replay); returns the ids that had rows. Idempotent. */
  deleteAccountRows(accountIds: string[]): Promise<string[]>;
}

export interface AccountStore extends AccountReader, AccountWriter, AccountEraser {}
