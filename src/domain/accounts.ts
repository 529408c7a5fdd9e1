// Accounts and their personal data. Everything personal is sealed under the
// account's own data key; this module is the one place that seals and opens it.
import { decryptString, encryptString, type Keyring } from "../crypto/keyring.ts";
import type { MessagePayload } from "./messages.ts";
import { DomainError } from "./errors.ts";
import { newId } from "./ids.ts";
import type { AccountReader, StoredAccount, StoredIdentity } from "./ports/accounts.ts";
import type { ClaimedMessage, OutboxMessage } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import { IdentityKind, type AccountState, type Account, type Locale, type Profile, type Role } from "./types.ts";

export const EMAIL_INDEX = "email";

const profileContext = (accountId: string) => `account:${accountId}:profile`;
const identityContext = (identityId: string) => `identity:${identityId}:value`;
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
  const { at } = input;
  const accountId = newId(at, input.random);
  const identityId = newId(at, input.random);
  const created = keyring.newDataKey(accountId);
  return {
    account: {
      id: accountId,
      tenantId: input.tenantId,
      role: input.role,
      state: input.state,
      locale: input.locale,
      emailVerified: input.verifiedAt !== null,
      profileSealed: sealProfile(created.key, accountId, { email: input.email, displayName: "", pronouns: "", customAttributes: {}, pushTokens: [] }),
      passwordHash: input.passwordHash,
      plan: "",
      planExpiresAt: null,
      createdAt: at,
      updatedAt: at,
    },
    wrappedKey: created.wrapped,
    identity: {
      id: identityId,
      tenantId: input.tenantId,
      accountId,
      kind: IdentityKind.EMAIL,
      lookupHash: input.lookupHash,
      valueSealed: sealIdentityValue(created.key, identityId, input.email),
      verifiedAt: input.verifiedAt,
      createdAt: at,
    },
    dataKey: created.key,
  };
}
