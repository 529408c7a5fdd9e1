// Accounts and their personal data. Everything personal is sealed under the
// account's own data key; this module is the one place that seals and opens it.
import { decryptString, encryptString, type Keyring } from "../crypto/keyring.ts";
import type { MessagePayload } from "./messages.ts";
import { DomainError } from "./errors.ts";
import { newId } from "./ids.ts";
import type { AccountReader, StoredAccount, StoredIdentity } from "./ports/accounts.ts";
import type { ClaimedMessage, OutboxMessage } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import { IdentityKind, SubscriptionStatus, type AccountState, type Account, type Locale, type Profile, type Role } from "./types.ts";

export const EMAIL_INDEX = "email";
/** Blind-index namespaces of the other kinds (an OIDC value is `<issuer> <subject>`: see oidcLookupValue). */
export const PHONE_INDEX = "phone";
export const GUEST_INDEX = "guest";
export const OIDC_INDEX = "oidc";

/** The blind-index namespace of each identity kind: one HMAC key, a namespace per kind. */
export const IDENTITY_INDEX: Readonly<Record<IdentityKind, string>> = {
  [IdentityKind.EMAIL]: EMAIL_INDEX,
  [IdentityKind.PHONE]: PHONE_INDEX,
  [IdentityKind.GUEST]: GUEST_INDEX,
  [IdentityKind.OIDC]: OIDC_INDEX,
};

/** What an external identity is looked up by: its issuer and subject together (a subject is unique only per issuer). */
export function oidcLookupValue(issuer: string, subject: string): string {
  return `${issuer}\n${subject}`;
}

const profileContext = (accountId: string) => `account:${accountId}:profile`;
const identityContext = (identityId: string) => `identity:${identityId}:value`;
const identityProfileContext = (identityId: string) => `identity:${identityId}:profile`;
const outboxContext = (messageId: string) => `outbox:${messageId}`;

export function sealProfile(dataKey: Buffer, accountId: string, profile: Profile): string {
  return encryptString(dataKey, JSON.stringify(profile), profileContext(accountId));
}

export function sealIdentityValue(dataKey: Buffer, identityId: string, value: string): string {
  return encryptString(dataKey, value, identityContext(identityId));
}

export function openIdentityValue(dataKey: Buffer, identityId: string, sealed: string): string {
  return decryptString(dataKey, sealed, identityContext(identityId));
}

/** An identity's JSON profile (Webcom's identity profile), sealed like its value. */
export function sealIdentityProfile(dataKey: Buffer, identityId: string, profile: Record<string, unknown>): string {
  return encryptString(dataKey, JSON.stringify(profile), identityProfileContext(identityId));
}

/** The identity's profile; {} when none was ever set. */
export function openIdentityProfile(dataKey: Buffer, identity: Pick<StoredIdentity, "id" | "profileSealed">): Record<string, unknown> {
  if (identity.profileSealed === null) return {};
  return JSON.parse(decryptString(dataKey, identity.profileSealed, identityProfileContext(identity.id))) as Record<string, unknown>;
}

/** An identity as its owner (and admins, and the export) see it: value and profile opened. */
export interface IdentityView {
  id: string;
  kind: IdentityKind;
  value: string;
  verifiedAt: number | null;
  createdAt: number;
  /** The issuer URL of an external identity; empty for the others. */
  issuer: string;
  profile: Record<string, unknown>;
}

export function identityView(dataKey: Buffer, identity: StoredIdentity): IdentityView {
  return {
    id: identity.id,
    kind: identity.kind as IdentityKind,
    value: openIdentityValue(dataKey, identity.id, identity.valueSealed),
    verifiedAt: identity.verifiedAt,
    createdAt: identity.createdAt,
    issuer: identity.issuer ?? "",
    profile: openIdentityProfile(dataKey, identity),
  };
}

/** What a new identity is: its kind, value (normalized), lookup and proof. */
export interface NewIdentity {
  kind: IdentityKind;
  /** The normalized value shown to the owner (an address, an E.164 number, a guest's id, an OIDC subject). */
  value: string;
  lookupHash: string;
  verifiedAt: number | null;
  issuer?: string | null;
}

/** A new identity row for an account, its value sealed under the account's data key. Nothing is written here. */
export function newIdentity(dataKey: Buffer, account: { id: string; tenantId: string }, identity: NewIdentity, at: number, random?: Random): StoredIdentity {
  const id = newId(at, random);
  return {
    id,
    tenantId: account.tenantId,
    accountId: account.id,
    kind: identity.kind,
    lookupHash: identity.lookupHash,
    valueSealed: sealIdentityValue(dataKey, id, identity.value),
    verifiedAt: identity.verifiedAt,
    createdAt: at,
    issuer: identity.issuer ?? null,
    profileSealed: null,
  };
}

export function openAccount(keyring: Keyring, stored: StoredAccount, wrappedKey: string): { account: Account; dataKey: Buffer } {
  const dataKey = keyring.unwrapDataKey(stored.id, wrappedKey);
  const profile = JSON.parse(decryptString(dataKey, stored.profileSealed, profileContext(stored.id))) as Profile;
  const account: Account = {
    id: stored.id,
    tenantId: stored.tenantId,
    role: stored.role,
    state: stored.state,
    locale: stored.locale as Locale,
    emailVerified: stored.emailVerified,
    profile,
    plan: stored.plan,
    planExpiresAt: stored.planExpiresAt,
    planStatus: stored.planStatus,
    planRenews: stored.planRenews,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
  };
  return { account, dataKey };
}

/** A message for the account, sealed under its data key so the outbox holds nothing readable. */
export function sealMessage(dataKey: Buffer, account: { id: string; tenantId: string }, payload: MessagePayload, now: number, random?: Random): OutboxMessage {
  const id = newId(now, random);
  return {
    id,
    tenantId: account.tenantId,
    accountId: account.id,
    kind: payload.kind,
    payloadSealed: encryptString(dataKey, JSON.stringify(payload), outboxContext(id)),
    createdAt: now,
  };
}

export interface Accounts {
  /** The account, decrypted; not_found when it is not in the tenant. */
  get(tenantId: string, accountId: string): Promise<Account>;
  /** Opens an outbox message for delivery; undefined when its account (and key) is gone. */
  openMessage(message: ClaimedMessage): Promise<MessagePayload | undefined>;
}

export function createAccounts(deps: { accounts: Pick<AccountReader, "getAccount">; keyring: Keyring }): Accounts {
  return {
    async get(tenantId, accountId) {
      const found = await deps.accounts.getAccount(tenantId, accountId);
      if (!found) throw new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");
      return openAccount(deps.keyring, found.account, found.wrappedKey).account;
    },
    async openMessage(message) {
      const found = await deps.accounts.getAccount(message.tenantId, message.accountId);
      if (!found) return undefined;
      const dataKey = deps.keyring.unwrapDataKey(found.account.id, found.wrappedKey);
      return JSON.parse(decryptString(dataKey, message.payloadSealed, outboxContext(message.id))) as MessagePayload;
    },
  };
}

/**
 * The rows of a new account signing in by email: a fresh data key, the profile
 * and the identity's value sealed under it. Nothing is written here; pass the
 * result (without dataKey) to AccountStore.createAccount.
 */
export function newEmailAccount(
  keyring: Keyring,
  input: {
    tenantId: string;
    email: string;
    lookupHash: string;
    passwordHash: string | null;
    role: Role;
    state: AccountState;
    locale: Locale;
    verifiedAt: number | null;
    at: number;
    random?: Random;
  },
): { account: StoredAccount; wrappedKey: string; identity: StoredIdentity; dataKey: Buffer } {
  return newAccount(keyring, {
    ...input,
    identity: { kind: IdentityKind.EMAIL, value: input.email, lookupHash: input.lookupHash, verifiedAt: input.verifiedAt },
  });
}

/**
 * The rows of a new account with its first identity of any kind (a phone, a
 * guest, an external identity). The profile's email is the identity's value
 * for an email identity, else empty (the account has no primary email until
 * an email identity is added). Nothing is written here.
 */
export function newAccount(
  keyring: Keyring,
  input: {
    tenantId: string;
    identity: NewIdentity;
    passwordHash: string | null;
    role: Role;
    state: AccountState;
    locale: Locale;
    at: number;
    random?: Random;
  },
): { account: StoredAccount; wrappedKey: string; identity: StoredIdentity; dataKey: Buffer } {
  const { at } = input;
  const accountId = newId(at, input.random);
  const created = keyring.newDataKey(accountId);
  const isEmail = input.identity.kind === IdentityKind.EMAIL;
  const email = isEmail ? input.identity.value : "";
  return {
    account: {
      id: accountId,
      tenantId: input.tenantId,
      role: input.role,
      state: input.state,
      locale: input.locale,
      emailVerified: isEmail && input.identity.verifiedAt !== null,
      profileSealed: sealProfile(created.key, accountId, { email, displayName: "", pronouns: "", customAttributes: {}, pushTokens: [] }),
      passwordHash: input.passwordHash,
      plan: "",
      planExpiresAt: null,
      planStatus: SubscriptionStatus.NONE,
      planRenews: false,
      planRemindedFor: null,
      temporaryPasswordUntil: null,
      createdAt: at,
      updatedAt: at,
    },
    wrappedKey: created.wrapped,
    identity: newIdentity(created.key, { id: accountId, tenantId: input.tenantId }, input.identity, at, input.random),
    dataKey: created.key,
  };
}
