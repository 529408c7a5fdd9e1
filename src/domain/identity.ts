// The first path every person takes: sign up, verify the address, sign in.
// Enumeration-safe: sign-up and sign-in answer the same way, after the same
// work, whether or not an address is known.
import { hashSecret, randomToken, type Keyring } from "../crypto/keyring.ts";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { MessageKind, type MessagePayload } from "../delivery/types.ts";
import { EMAIL_INDEX, openAccount, sealIdentityValue, sealMessage, sealProfile } from "./accounts.ts";
import { DomainError, invalidArgument, unauthenticated } from "./errors.ts";
import type { Limits } from "./limits.ts";
import { newId } from "./ids.ts";
import { DuplicateIdentityError, type DurableStores, type EphemeralStores } from "./ports.ts";
import type { IssuedSession, RequestMeta, Sessions } from "./sessions.ts";
import { DEFAULT_TENANT_ID, type Tenants } from "./tenants.ts";
import { AccountState, AssuranceLevel, IdentityKind, Role, type Account, type Locale, type Tenant } from "./types.ts";
import { checkNewPassword, normalizeEmail, normalizePassword, parseLocale, PASSWORD_MAX_LENGTH } from "./validation.ts";

const MINUTE = 60_000;

export interface IdentityFlowDeps {
  durable: DurableStores;
  ephemeral: EphemeralStores;
  tenants: Tenants;
  keyring: Keyring;
  passwords: PasswordHasher;
  sessions: Sessions;
  limits: Limits;
  now: () => number;
  publicUrl: string;
  verificationLinkTtlMs: number;
  /** Called after messages are queued, to wake the outbox worker. */
  onMessageQueued: () => void;
}

export interface SignUpInput {
  tenantId: string;
  email: string;
  password: string;
  locale: string;
  meta: RequestMeta;
}

export interface SignInResult extends IssuedSession {
  account: Account;
}

export interface IdentityFlows {
  signUp(input: SignUpInput): Promise<void>;
  verifyIdentity(input: { token: string; meta: RequestMeta }): Promise<SignInResult>;
  signInWithPassword(input: { tenantId: string; email: string; password: string; meta: RequestMeta }): Promise<SignInResult>;
}

export function createIdentityFlows(deps: IdentityFlowDeps): IdentityFlows {
  const { durable, ephemeral, keyring, passwords, now } = deps;

  const { limits } = deps;

  function linkBase(tenant: Tenant): string {
    return (tenant.settings.linkBaseUrl || deps.publicUrl).replace(/\/+$/, "");
  }

  async function issueLinkToken(purpose: "verify_email", account: { id: string; tenantId: string }, identityId: string, ttlMs: number): Promise<string> {
    const token = randomToken(32);
    const at = now();
    await ephemeral.tokens.put(hashSecret(token), { purpose, tenantId: account.tenantId, accountId: account.id, identityId, expiresAt: at + ttlMs }, ttlMs);
    return token;
  }

  function assertCanSignIn(account: Account) {
    if (account.state === AccountState.DEACTIVATED) throw new DomainError("failed_precondition", "ACCOUNT_DEACTIVATED", "account is deactivated");
    if (account.state === AccountState.PENDING_VERIFICATION) throw new DomainError("failed_precondition", "IDENTITY_UNVERIFIED", "email address is not verified yet");
    if (account.state === AccountState.PENDING_ACTIVATION) throw new DomainError("failed_precondition", "ACCOUNT_PENDING_ACTIVATION", "account awaits activation by an administrator");
  }

  return {
    async signUp(input) {
      const tenant = await deps.tenants.get(input.tenantId);
      const email = normalizeEmail("email", input.email);
      const locale = parseLocale("locale", input.locale, tenant.settings.defaultLocale);
      const password = checkNewPassword("password", input.password, tenant.settings.passwordMinLength, [email]);
      if (tenant.settings.inviteOnly) throw new DomainError("failed_precondition", "SIGN_UP_CLOSED", "sign-up is by invitation only");
      const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
      await limits.consume("sign_up_ip", input.meta.ip, tenant.settings);

      // Hash before looking up, so both outcomes cost one argon2 computation.
      const passwordHash = await passwords.hash(password);
      const at = now();
      const accountId = newId(at);
      const identityId = newId(at);
      const created = keyring.newDataKey(accountId);
      const account = { id: accountId, tenantId: tenant.id };
      const token = await issueLinkToken("verify_email", account, identityId, deps.verificationLinkTtlMs);
      const verification: MessagePayload = {
        kind: MessageKind.VERIFY_EMAIL,
        to: email,
        locale,
        variables: { link: `${linkBase(tenant)}/verify-email?token=${token}`, expiresInMinutes: String(Math.round(deps.verificationLinkTtlMs / MINUTE)) },
      };
      const messages = (await limits.tryConsume("message_address", lookupHash, tenant.settings)) ? [sealMessage(created.key, account, verification, at)] : [];
      try {
        await durable.accounts.createAccount({
          account: {
            id: accountId,
            tenantId: tenant.id,
            role: Role.USER,
            state: AccountState.PENDING_VERIFICATION,
            locale,
            emailVerified: false,
            profileSealed: sealProfile(created.key, accountId, { email, displayName: "", pronouns: "", customAttributes: {}, pushTokens: [] }),
            passwordHash,
            plan: "",
            planExpiresAt: null,
            createdAt: at,
            updatedAt: at,
          },
          wrappedKey: created.wrapped,
          identity: {
            id: identityId,
            tenantId: tenant.id,
            accountId,
            kind: IdentityKind.EMAIL,
            lookupHash,
            valueSealed: sealIdentityValue(created.key, identityId, email),
            verifiedAt: null,
            createdAt: at,
          },
          messages,
        });
      } catch (error) {
        if (!(error instanceof DuplicateIdentityError)) throw error;
        await ephemeral.tokens.take(hashSecret(token)); // never usable: its account was not created
        // This attempt's message budget was counted above (for the verification that
        // will not be sent): the notice uses it instead of counting a second time.
        await notifyExistingOwner(tenant, lookupHash, locale, messages.length > 0);
      }
      if (messages.length > 0) deps.onMessageQueued();
    },

    async verifyIdentity({ token, meta }) {
      const refused = () => invalidArgument("token", "is invalid, expired or already used", "TOKEN_INVALID");
      if (token.length === 0 || token.length > 256) throw refused();
      const tokenHash = hashSecret(token);
      const peeked = await ephemeral.tokens.peek(tokenHash);
      // Guessing costs attempts from the caller's IP budget for codes.
      const tenantForLimits = await deps.tenants.get(peeked?.tenantId ?? DEFAULT_TENANT_ID);
      await limits.consume("code_ip", meta.ip, tenantForLimits.settings);
      if (!peeked || peeked.purpose !== "verify_email") throw refused();
      // take() is atomic: of two concurrent uses, one wins.
      const taken = await ephemeral.tokens.take(tokenHash);
      if (!taken || taken.expiresAt <= now()) throw refused();
      const tenant = await deps.tenants.get(taken.tenantId);
      const state = tenant.settings.manualActivation ? AccountState.PENDING_ACTIVATION : AccountState.ACTIVE;
      const found = await durable.accounts.getAccount(taken.tenantId, taken.accountId);
      if (!found) throw refused();
      // A deactivated account stays deactivated; verification only proves the address.
      const nextState = found.account.state === AccountState.DEACTIVATED ? AccountState.DEACTIVATED : found.account.state === AccountState.ACTIVE ? AccountState.ACTIVE : state;
      if (!(await durable.accounts.markIdentityVerified({ identityId: taken.identityId, accountId: taken.accountId, at: now(), state: nextState }))) throw refused();
      const { account } = openAccount(keyring, { ...found.account, state: nextState, emailVerified: true }, found.wrappedKey);
      assertCanSignIn(account);
      const issued = await deps.sessions.issue(account, tenant.settings, meta, AssuranceLevel.AAL1);
      return { ...issued, account };
    },

    async signInWithPassword(input) {
      const tenant = await deps.tenants.get(input.tenantId);
      const email = normalizeEmail("email_password.email", input.email);
      if (input.password.length === 0) throw invalidArgument("email_password.password", "is required");
      if (input.password.length > PASSWORD_MAX_LENGTH * 4) throw invalidArgument("email_password.password", `must be at most ${PASSWORD_MAX_LENGTH} characters`);
      const password = normalizePassword(input.password);
      const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
      // Counted per address whether or not it exists: the answer reveals nothing.
      await limits.consume("sign_in_ip", input.meta.ip, tenant.settings);
      await limits.consume("sign_in_account", lookupHash, tenant.settings);

      const found = await durable.accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, lookupHash);
      if (!found || !found.account.passwordHash) {
        await passwords.verifyDummy(password); // same cost as a real check
        throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
      }
      if (!(await passwords.verify(found.account.passwordHash, password))) throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
      // Only someone who knows the password learns the account's state.
      const { account } = openAccount(keyring, found.account, found.wrappedKey);
      if (found.identity.verifiedAt === null) throw new DomainError("failed_precondition", "IDENTITY_UNVERIFIED", "email address is not verified yet");
      assertCanSignIn(account);
      if (passwords.needsRehash(found.account.passwordHash)) {
        await durable.accounts.setPasswordHash(account.id, await passwords.hash(password), now());
      }
      const issued = await deps.sessions.issue(account, tenant.settings, input.meta, AssuranceLevel.AAL1);
      return { ...issued, account };
    },
  };

  /** The owner of a taken address hears about the attempt; the caller learns nothing. */
  async function notifyExistingOwner(tenant: Tenant, lookupHash: string, locale: Locale, withinBudget: boolean) {
    const found = await durable.accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, lookupHash);
    if (!found || !withinBudget) return;
    const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
    const notice: MessagePayload = {
      kind: MessageKind.SIGNUP_EXISTING,
      to: account.profile.email,
      locale: (account.locale as Locale) || locale,
      variables: { link: `${linkBase(tenant)}/sign-in`, resetLink: `${linkBase(tenant)}/reset-password` },
    };
    await durable.outbox.enqueue([sealMessage(dataKey, account, notice, now())]);
  }
}
