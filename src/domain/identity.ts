// The first path every person takes: sign up, verify the address, sign in.
// Enumeration-safe: sign-up and sign-in answer the same way, after the same
// work, whether or not an address is known.
import { decryptString, encryptString, type Keyring } from "../crypto/keyring.ts";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { MessageKind, type MessagePayload } from "./messages.ts";
import { EMAIL_INDEX, newEmailAccount, newIdentity, openAccount, sealMessage, sealProfile } from "./accounts.ts";
import { newId } from "./ids.ts";
import type { AddressRequests } from "./address-requests.ts";
import type { AuditLog } from "./audit-log.ts";
import { createSecurityEvents, type SecurityAttempt, type SecuritySubject } from "./audit.ts";
import { checkConsentGrants, consentClient, consentRows, type ConsentGrant } from "./consents.ts";
import { accountActor } from "./principal.ts";
import { DomainError, invalidArgument, unauthenticated } from "./errors.ts";
import { accountEvent, EventType } from "./events.ts";
import type { BlockingHooks } from "./hooks.ts";
import type { Limits } from "./limits.ts";
import { issueLinkToken, peekOneTimeToken, takeOneTimeToken, tokenRefused } from "./one-time-tokens.ts";
import { type AccountReader, type AccountWriter, DuplicateIdentityError, type StoredAccount } from "./ports/accounts.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { IssuedSession, RequestMeta, Sessions } from "./sessions.ts";
import { DEFAULT_TENANT_ID, type Tenants } from "./tenants.ts";
import { type SubscriptionCache, startTrialAt, subscriptionOf, trialAtCreation } from "./subscriptions.ts";
import {
  AccountState,
  AssuranceLevel,
  AuthMethod,
  IdentityKind,
  Role,
  type Account,
  type OneTimeToken,
  type Locale,
  type Tenant,
  type TenantSettings,
} from "./types.ts";
import type { FoundIdentity } from "./found-identity.ts";
import { linkBase } from "./found-identity.ts";
import { checkNewPassword, normalizeEmail, normalizePassword, parseLocale, PASSWORD_MAX_LENGTH } from "./validation.ts";

const MINUTE = 60_000;

export interface IdentityFlowDeps {
  /** Reads and ordinary writes; sign-up, verification and sign-in never erase. */
  accounts: AccountReader & AccountWriter;
  /** Told when a trial starts after the account exists (at verification, at a guest's upgrade). */
  subscriptionCache: Pick<SubscriptionCache, "changed">;
  outbox: OutboxWriter;
  /** Where verification links are kept (by hash) until used. */
  tokens: TokenStore;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  passwords: PasswordHasher;
  sessions: Pick<Sessions, "issue" | "end">;
  limits: Limits;
  now: () => number;
  /** Link tokens and ids draw from it. */
  random: Random;
  publicUrl: string;
  verificationLinkTtlMs: number;
  /** Called after messages are queued, to wake the outbox worker. */
  onMessageQueued: () => void;
  /** Where sign-ups, verifications and sign-ins (and their failures) are recorded as security events. */
  audit: AuditLog;
  /** How a sign-up with a taken address reaches its owner: one request row, built into a message by the worker. */
  addressRequests: Pick<AddressRequests, "queue">;
  /** After a correct password: the second-factor challenge when the account has a factor (src/domain/second-factors.ts). */
  secondFactors: {
    challengeFor(
      tenant: Tenant,
      account: Account,
      identityId: string,
      passwordHash: string,
      firstMethod?: string,
    ): Promise<SecondFactorNeeded["secondFactor"] | undefined>;
  };
  /** The tenant's blocking hooks (before_sign_up); none: no hook is asked. */
  hooks?: Pick<BlockingHooks, "check">;
}

export interface SignUpInput {
  tenantId: string;
  /**
   * The signed-in caller's account (SignUp with a bearer, Webcom): the address is
   * attached to it once its link is opened, instead of creating an account.
   */
  accountId?: string;
  email: string;
  password: string;
  locale: string;
  meta: RequestMeta;
  /** Consents given on the sign-up form; recorded with the account (none for a taken address). */
  consents?: readonly ConsentGrant[];
}

export interface SignInResult extends IssuedSession {
  account: Account;
}

/** A correct password on an account with a second factor: no session yet, a challenge to answer (CompleteSecondFactor). */
export interface SecondFactorNeeded {
  account: Account;
  secondFactor: { challenge: string; expiresAt: number; kinds: number[] };
}

export interface IdentityFlows {
  signUp(input: SignUpInput): Promise<void>;
  /** `tenantId`: the request's, whose code budget an unknown token spends. */
  verifyIdentity(input: { token: string; tenantId: string; meta: RequestMeta }): Promise<SignInResult>;
  /** `newPassword` ("" for none): replaces an admin-issued temporary password, which signs in only so (PASSWORD_CHANGE_REQUIRED otherwise). */
  signInWithPassword(input: {
    tenantId: string;
    email: string;
    password: string;
    newPassword?: string;
    meta: RequestMeta;
  }): Promise<SignInResult | SecondFactorNeeded>;
}

export { type FoundIdentity, linkBase } from "./found-identity.ts";

/** The state an account moves to once an identity of it is proven. A deactivated account stays deactivated. */
export function stateAfterVerification(settings: TenantSettings, current: AccountState): AccountState {
  if (current === AccountState.DEACTIVATED || current === AccountState.ACTIVE) return current;
  return settings.manualActivation ? AccountState.PENDING_ACTIVATION : AccountState.ACTIVE;
}

/** A password typed to prove who one is (not a new one): present, bounded, in its hashed form. */
export function givenPassword(field: string, raw: string): string {
  if (raw.length === 0) throw invalidArgument(field, "is required");
  if (raw.length > PASSWORD_MAX_LENGTH * 4) throw invalidArgument(field, `must be at most ${PASSWORD_MAX_LENGTH} characters`);
  return normalizePassword(raw);
}

export function assertCanSignIn(account: Account) {
  if (account.state === AccountState.DEACTIVATED) throw new DomainError("failed_precondition", "ACCOUNT_DEACTIVATED", "account is deactivated");
  if (account.state === AccountState.PENDING_VERIFICATION)
    throw new DomainError("failed_precondition", "IDENTITY_UNVERIFIED", "email address is not verified yet");
  if (account.state === AccountState.PENDING_ACTIVATION)
    throw new DomainError("failed_precondition", "ACCOUNT_PENDING_ACTIVATION", "account awaits activation by an administrator");
}

/** What queuing a verification link needs. */
export type VerificationLinkDeps = Pick<
  IdentityFlowDeps,
  "keyring" | "tokens" | "outbox" | "now" | "random" | "publicUrl" | "verificationLinkTtlMs" | "onMessageQueued"
>;

function verificationMessage(
  deps: Pick<IdentityFlowDeps, "publicUrl" | "verificationLinkTtlMs">,
  tenant: Tenant,
  to: string,
  locale: Locale,
  token: string,
): MessagePayload {
  return {
    kind: MessageKind.VERIFY_EMAIL,
    to,
    locale,
    variables: {
      link: `${linkBase(tenant, deps.publicUrl)}/verify-email?token=${token}`,
      expiresInMinutes: String(Math.round(deps.verificationLinkTtlMs / MINUTE)),
    },
  };
}

/**
 * Queues a new verification link for an unverified email identity (a second
 * sign-up, a resend); earlier links stay valid until they expire. The message
 * goes in the request's locale, else the account's. `data` rides on the token.
 */
export async function queueVerificationLink(
  deps: VerificationLinkDeps,
  tenant: Tenant,
  found: FoundIdentity,
  locale: Locale | undefined,
  data?: Record<string, string>,
): Promise<void> {
  const { account, dataKey } = openAccount(deps.keyring, found.account, found.wrappedKey);
  const { token } = await issueLinkToken(deps, "verify_email", found.identity, deps.verificationLinkTtlMs, data);
  const message = verificationMessage(deps, tenant, account.profile.email, locale ?? account.locale, token);
  await deps.outbox.enqueue([sealMessage(dataKey, account, message, deps.now(), deps.random)]);
  deps.onMessageQueued();
}

const pendingPasswordContext = (accountId: string) => `pending-password:${accountId}`;
const linkContext = (accountId: string) => `link-email:${accountId}`;

export function createIdentityFlows(deps: IdentityFlowDeps): IdentityFlows {
  const { accounts, keyring, passwords, now, random, limits } = deps;

  /** The password hash a second sign-up's verification link carries, opened; undefined when it carries none. */
  function pendingPassword(
    found: FoundIdentity | { account: StoredAccount; wrappedKey: string },
    data: Record<string, string> | undefined,
  ): string | undefined {
    if (data?.passwordHashSealed)
      return decryptString(keyring.unwrapDataKey(found.account.id, found.wrappedKey), data.passwordHashSealed, pendingPasswordContext(found.account.id));
    return data?.passwordHash; // a link sent before hashes were sealed (they live a day at most)
  }

  // Each flow returns its outcome with the subject its security event is about
  // (whom it concerned, as far as it got): the wrapper below records it.
  const flows = {
    async signUp(input: SignUpInput): Promise<SecurityAttempt<void>> {
      if (input.accountId !== undefined) return linkEmail({ ...input, accountId: input.accountId });
      let subject: SecuritySubject = {};
      try {
        const tenant = await deps.tenants.get(input.tenantId);
        const email = normalizeEmail("email", input.email);
        const locale = parseLocale("locale", input.locale, tenant.settings.defaultLocale);
        const password = checkNewPassword("password", input.password, tenant.settings.passwordMinLength, [email]);
        const grants = checkConsentGrants("consents", input.consents ?? []);
        if (tenant.settings.inviteOnly) throw new DomainError("failed_precondition", "SIGN_UP_CLOSED", "sign-up is by invitation only");
        const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
        await limits.consume("sign_up_ip", tenant, input.meta.ip);
        // The tenant's hook may refuse (its reason reaches the client); it never learns the address.
        await deps.hooks?.check("before_sign_up", { tenantId: tenant.id, identityKind: IdentityKind.EMAIL, meta: input.meta });

        // Hash before looking up, so both outcomes cost one argon2 computation.
        const passwordHash = await passwords.hash(password);
        const at = now();
        const { dataKey, ...rows } = newEmailAccount(keyring, {
          tenantId: tenant.id,
          email,
          lookupHash,
          passwordHash,
          role: Role.USER,
          state: AccountState.PENDING_VERIFICATION,
          locale,
          verifiedAt: null,
          at,
          random,
        });
        // The tenant's trial rule for a new account (src/domain/subscriptions.ts).
        rows.account = { ...rows.account, ...trialAtCreation(tenant.settings, rows.identity, at) };
        const accountId = rows.account.id;
        const account = { id: accountId, tenantId: tenant.id };
        const { token } = await issueLinkToken(deps, "verify_email", rows.identity, deps.verificationLinkTtlMs);
        const verification = verificationMessage(deps, tenant, email, locale, token);
        const messages = (await limits.tryMessage(tenant, lookupHash, input.meta.ip)) ? [sealMessage(dataKey, account, verification, at, random)] : [];
        try {
          await accounts.createAccount({
            ...rows,
            messages,
            consents: consentRows({ tenantId: tenant.id, accountId }, grants, consentClient(input.meta.userAgent), at, random),
            events: [
              accountEvent(EventType.ACCOUNT_CREATED, account, at, { identity_id: rows.identity.id, identity_kind: "email" }, random),
              ...grants.map((g) => accountEvent(EventType.CONSENT_CHANGED, account, at, { purpose: g.purpose, granted: g.granted }, random)),
            ],
          });
          subject = { accountId };
        } catch (error) {
          if (!(error instanceof DuplicateIdentityError)) throw error;
          subject = { outcome: "IDENTITY_EXISTS" }; // recorded only: the caller's answer is the same
          // The token is not discarded: no message carries it and its account was never created,
          // so it cannot be used; deleting it would be one more round trip only this outcome makes.
          // This attempt's message budget was counted above (for the verification that
          // will not be sent): the notice uses it instead of counting a second time.
          await notifyExistingOwner(tenant, lookupHash, locale, messages.length > 0, passwordHash);
        }
        // A taken address's request wakes the worker itself, a moment after the answer.
        if (messages.length > 0 && subject.accountId) deps.onMessageQueued();
        return { ok: true, value: undefined, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async verifyIdentity({ token, tenantId, meta }: { token: string; tenantId: string; meta: RequestMeta }): Promise<SecurityAttempt<SignInResult>> {
      let subject: SecuritySubject = {};
      try {
        const { tokenHash } = await peekOneTimeToken(deps, { field: "token", token, purpose: "verify_email", tenantId, meta });
        const taken = await takeOneTimeToken(deps, "token", tokenHash, "verify_email");
        subject = { tenantId: taken.tenantId, accountId: taken.accountId };
        const tenant = await deps.tenants.get(taken.tenantId);
        if (taken.data?.linkEmailSealed !== undefined) return { ok: true, value: await completeLink(tenant, taken, meta), subject };
        const found = await accounts.getAccount(taken.tenantId, taken.accountId);
        if (!found) throw tokenRefused("token");
        // A link bound to an address (an admin's change) verifies that address only, never a later one.
        if (taken.data?.address !== undefined) {
          const identity = (await accounts.listIdentities(taken.accountId)).find((i) => i.id === taken.identityId);
          if (identity?.lookupHash !== taken.data.address) throw tokenRefused("token");
        }
        // A link sent by a second sign-up of a still unverified address carries that
        // sign-up's password: whoever opens it proves the mailbox, so the password is
        // theirs, not the one an earlier, unproven sign-up chose (account pre-hijacking).
        const pendingPasswordHash = pendingPassword(found, taken.data);
        if (pendingPasswordHash && found.account.state === AccountState.PENDING_VERIFICATION) {
          await accounts.setPasswordHash(found.account.id, pendingPasswordHash, now());
        }
        const nextState = stateAfterVerification(tenant.settings, found.account.state);
        const at = now();
        const verifiedIdentity = { identity_id: taken.identityId, identity_kind: "email" };
        const events = [accountEvent(EventType.IDENTITY_VERIFIED, found.account, at, verifiedIdentity, random)];
        if (!found.account.emailVerified) events.push(accountEvent(EventType.ACCOUNT_VERIFIED, found.account, at, {}, random));
        if (!(await accounts.markIdentityVerified({ identityId: taken.identityId, accountId: taken.accountId, at, state: nextState, events })))
          throw tokenRefused("token");
        let verified: StoredAccount = { ...found.account, state: nextState, emailVerified: true };
        // A trial the tenant starts at verification begins at the first one (an account never subscribed).
        verified = (await startTrialAt(deps, tenant.settings, verified, "verification", at)) ?? verified;
        const { account, dataKey } = openAccount(keyring, verified, found.wrappedKey);
        assertCanSignIn(account);
        const issued = await deps.sessions.issue(account, tenant.settings, meta, AssuranceLevel.AAL1, dataKey, [
          { method: AuthMethod.EMAIL_LINK, identityId: taken.identityId },
        ]);
        return { ok: true, value: { ...issued, account }, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async signInWithPassword(input: Parameters<IdentityFlows["signInWithPassword"]>[0]): Promise<SecurityAttempt<SignInResult | SecondFactorNeeded>> {
      let subject: SecuritySubject = {};
      try {
        const tenant = await deps.tenants.get(input.tenantId);
        const email = normalizeEmail("email_password.email", input.email);
        const password = givenPassword("email_password.password", input.password);
        const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
        // Counted per address whether or not it exists: the answer reveals nothing.
        const guess = await limits.passwordGuess(tenant, lookupHash, input.meta.ip);

        const found = await accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, lookupHash);
        subject = { accountId: found?.account.id ?? "" };
        if (!found?.account.passwordHash) {
          await passwords.verifyDummy(password); // same cost as a real check
          throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
        }
        if (!(await passwords.verify(found.account.passwordHash, password))) throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
        // Only failures count: the owner signing in again and again spends no budget.
        await guess.refund();
        // Only someone who knows the password learns the account's state.
        const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
        if (found.identity.verifiedAt === null) throw new DomainError("failed_precondition", "IDENTITY_UNVERIFIED", "email address is not verified yet");
        assertCanSignIn(account);
        let passwordHash = found.account.passwordHash;
        const temporaryUntil = found.account.temporaryPasswordUntil;
        if (temporaryUntil !== null) {
          // An admin-issued temporary password: expired, it is no password at all; else it
          // signs in only together with the new password that replaces it (used once).
          if (temporaryUntil <= now()) throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
          if (!input.newPassword)
            throw new DomainError(
              "failed_precondition",
              "PASSWORD_CHANGE_REQUIRED",
              "this temporary password must be changed: sign in again with email_password.new_password set",
            );
          const chosen = checkNewPassword("email_password.new_password", input.newPassword, tenant.settings.passwordMinLength, [email]);
          const newHash = await passwords.hash(chosen);
          const replaced = found.account.passwordHash;
          const written = await accounts.updateAccount({
            tenantId: tenant.id,
            accountId: account.id,
            at: now(),
            change: (current) => {
              if (current.passwordHash !== replaced) throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
              return { passwordHash: newHash, temporaryPasswordUntil: null, events: [accountEvent(EventType.PASSWORD_CHANGED, current, now(), {}, random)] };
            },
          });
          if (!written) throw unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
          passwordHash = newHash;
        } else if (passwords.needsRehash(passwordHash)) {
          passwordHash = await passwords.hash(password);
          await accounts.setPasswordHash(account.id, passwordHash, now());
        }
        // An account with a second factor gets a challenge, not a session (CompleteSecondFactor).
        const secondFactor = await deps.secondFactors.challengeFor(tenant, account, found.identity.id, passwordHash);
        if (secondFactor) return { ok: true, value: { account, secondFactor }, subject };
        const issued = await deps.sessions.issue(account, tenant.settings, input.meta, AssuranceLevel.AAL1, dataKey, [
          { method: AuthMethod.PASSWORD, identityId: found.identity.id },
        ]);
        // A deactivation, role change or password reset that ended every session while
        // this sign-in was checking the password must not miss the session issued now.
        const current = (await accounts.getAccount(tenant.id, account.id))?.account;
        if (!current || current.state !== account.state || current.role !== account.role || current.passwordHash !== passwordHash) {
          await deps.sessions.end(issued.token);
          if (current && current.passwordHash === passwordHash) assertCanSignIn({ ...account, state: current.state });
          throw current?.passwordHash === passwordHash
            ? new DomainError("unavailable", "ACCOUNT_CHANGED", "the account changed during sign-in; sign in again")
            : unauthenticated("INVALID_CREDENTIALS", "email or password is incorrect");
        }
        return { ok: true, value: { ...issued, account }, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },
  };

  /**
   * SignUp with a bearer: a verification link that attaches the address to the
   * caller's account when opened (nothing is written before). The answer is the
   * same when the address is taken, by anyone: then no link goes out, the
   * address is never moved, and the owner of a verified address gets a notice.
   * The password: the account's current one when it has one (checked as a sign-in
   * guess), else a new one under the tenant's rules, set when the link is opened.
   */
  async function linkEmail(input: SignUpInput & { accountId: string }): Promise<SecurityAttempt<void>> {
    const subject: SecuritySubject = { accountId: input.accountId };
    try {
      const tenant = await deps.tenants.get(input.tenantId);
      const email = normalizeEmail("email", input.email);
      const own = await accounts.getAccount(tenant.id, input.accountId);
      if (!own) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
      const { account, dataKey } = openAccount(keyring, own.account, own.wrappedKey);
      const locale = parseLocale("locale", input.locale, account.locale);
      const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
      await limits.consume("sign_up_ip", tenant, input.meta.ip);
      let newPasswordHash: string | undefined;
      if (own.account.passwordHash) {
        const given = givenPassword("password", input.password);
        const guess = await limits.passwordGuess(tenant, `account:${own.account.id}`, input.meta.ip);
        if (!(await passwords.verify(own.account.passwordHash, given))) throw unauthenticated("INVALID_CREDENTIALS", "the password is not the account's");
        await guess.refund();
      } else {
        newPasswordHash = await passwords.hash(checkNewPassword("password", input.password, tenant.settings.passwordMinLength, [email]));
      }
      if (!(await limits.tryMessage(tenant, lookupHash, input.meta.ip))) return { ok: true, value: undefined, subject };
      const holder = await accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, lookupHash);
      if (holder) {
        // Never moved: the owner of a verified address hears of the attempt; the caller learns nothing.
        const notice = holder.account.id !== own.account.id && holder.identity.verifiedAt !== null ? holder : undefined;
        await deps.addressRequests.queue(tenant, MessageKind.SIGNUP_EXISTING, notice, locale);
        return { ok: true, value: undefined, subject: { ...subject, outcome: "IDENTITY_EXISTS" } };
      }
      const data: Record<string, string> = { linkEmailSealed: encryptString(dataKey, email, linkContext(own.account.id)) };
      if (newPasswordHash) data.passwordHashSealed = encryptString(dataKey, newPasswordHash, pendingPasswordContext(own.account.id));
      const pending = { id: newId(now(), random), tenantId: tenant.id, accountId: own.account.id };
      const { token } = await issueLinkToken(deps, "verify_email", pending, deps.verificationLinkTtlMs, data);
      await deps.outbox.enqueue([sealMessage(dataKey, account, verificationMessage(deps, tenant, email, locale, token), now(), random)]);
      deps.onMessageQueued();
      return { ok: true, value: undefined, subject };
    } catch (error) {
      return { ok: false, error, subject };
    }
  }

  /** The link of linkEmail opened: the address joins the account (a guest's identity retired), and the opener is signed in. */
  async function completeLink(tenant: Tenant, taken: OneTimeToken, meta: RequestMeta): Promise<SignInResult> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const found = await accounts.getAccount(taken.tenantId, taken.accountId);
      if (!found) throw tokenRefused("token");
      const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
      const email = decryptString(dataKey, taken.data!.linkEmailSealed!, linkContext(account.id));
      const at = now();
      const identity = newIdentity(
        dataKey,
        account,
        { kind: IdentityKind.EMAIL, value: email, lookupHash: keyring.blindIndex(EMAIL_INDEX, email), verifiedAt: at },
        at,
        random,
      );
      const retire = (await accounts.listIdentities(account.id)).filter((i) => i.kind === IdentityKind.GUEST).map((i) => i.id);
      // An account without a primary email (a phone's, a guest's) takes this one.
      const profile =
        account.profile.email === ""
          ? { expectedSealed: found.account.profileSealed, sealed: sealProfile(dataKey, account.id, { ...account.profile, email }), emailVerified: true }
          : undefined;
      let added: boolean;
      try {
        const events = [accountEvent(EventType.IDENTITY_ADDED, account, at, { identity_id: identity.id, identity_kind: "email" }, random)];
        added = await accounts.addIdentity({ tenantId: tenant.id, accountId: account.id, identity, retire, ...(profile ? { profile } : {}), at, events });
      } catch (error) {
        if (!(error instanceof DuplicateIdentityError)) throw error;
        throw new DomainError("failed_precondition", "IDENTITY_TAKEN", "this address was added to another account meanwhile");
      }
      if (!added) continue; // the profile changed meanwhile: read again
      const passwordHash = pendingPassword(found, taken.data);
      if (passwordHash && found.account.passwordHash === null) await accounts.setPasswordHash(account.id, passwordHash, now());
      let current = profile ? { ...account, profile: { ...account.profile, email }, emailVerified: true } : account;
      // A guest becoming a person starts the tenant's trial now (guests start none).
      const trial = retire.length > 0 ? await startTrialAt(deps, tenant.settings, account, "upgrade", at) : undefined;
      if (trial) current = { ...current, ...subscriptionOf(trial) };
      assertCanSignIn(current);
      const issued = await deps.sessions.issue(current, tenant.settings, meta, AssuranceLevel.AAL1, dataKey, [
        { method: AuthMethod.EMAIL_LINK, identityId: identity.id },
      ]);
      return { ...issued, account: current };
    }
    throw new DomainError("unavailable", "ACCOUNT_CHANGED", "the account changed meanwhile; open the link again");
  }

  // Every outcome is an audit event: one write whether or not the address is known.
  const security = createSecurityEvents(deps.audit, now);
  return {
    signUp: (input) =>
      security.run(
        input.tenantId,
        input.meta,
        { action: "identity.sign_up", rateLimited: "identity.rate_limited" },
        () => flows.signUp(input),
        // SignUp with a bearer: the signed-in account acts.
        input.accountId !== undefined ? accountActor(input.accountId) : undefined,
      ),
    verifyIdentity: (input) =>
      security.run(DEFAULT_TENANT_ID, input.meta, { action: "identity.verify", rateLimited: "identity.rate_limited" }, () => flows.verifyIdentity(input)),
    signInWithPassword: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.sign_in", rateLimited: "session.rate_limited" }, () => flows.signInWithPassword(input)),
  };

  /**
   * The owner of a taken address hears about the attempt; the caller learns nothing.
   * While the address is unverified, the owner gets a new verification link instead,
   * which sets this attempt's password (see verifyIdentity).
   */
  async function notifyExistingOwner(tenant: Tenant, lookupHash: string, locale: Locale, withinBudget: boolean, passwordHash: string) {
    // One lookup and one request row (the worker issues any token and builds the message):
    // with the failed insert, about the work a fresh address's single commit costs.
    if (!withinBudget) return; // a fresh address over budget queues nothing either
    const found = await accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, lookupHash);
    if (!found) return deps.addressRequests.queue(tenant, MessageKind.SIGNUP_EXISTING, undefined, locale); // erased meanwhile: a decoy
    if (found.identity.verifiedAt === null) {
      // The hash rides on the link's token, in Redis for as long as the link lives: sealed, like the rest of the person's data.
      const dataKey = keyring.unwrapDataKey(found.account.id, found.wrappedKey);
      return deps.addressRequests.queue(tenant, MessageKind.VERIFY_EMAIL, found, locale, {
        passwordHashSealed: encryptString(dataKey, passwordHash, pendingPasswordContext(found.account.id)),
      });
    }
    return deps.addressRequests.queue(tenant, MessageKind.SIGNUP_EXISTING, found, locale);
  }
}
