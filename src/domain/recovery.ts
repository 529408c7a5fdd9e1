// What a signed-up person needs later: the verification link again, a
// forgotten password reset, a password change, the identities they sign in
// with. (The purge of sign-ups nobody verified is retention's: src/domain/retention.ts.)
// Flows that take an address answer the same way whether or not it is known
// (the message goes only to an existing one). A reset code is a single-use
// 256-bit link token, bound to its purpose, account and identity, and to the
// password and address it was issued for: a password change or an email change
// voids every reset link sent before it.
import { hashSecret } from "../crypto/keyring.ts";
import { MessageKind, type MessagePayload } from "./messages.ts";
import { EMAIL_INDEX, identityView, type IdentityView, openAccount, sealMessage, sealProfile } from "./accounts.ts";
import { accountEvent, EventType, identityKindName } from "./events.ts";
import { DomainError, unauthenticated } from "./errors.ts";
import type { AddressRequests } from "./address-requests.ts";
import { givenPassword, stateAfterVerification, type FoundIdentity, type IdentityFlowDeps } from "./identity.ts";
import { peekOneTimeToken, takeOneTimeToken, tokenRefused } from "./one-time-tokens.ts";
import type { StoredAccount } from "./ports/accounts.ts";
import type { SessionPrincipal } from "./principal.ts";
import type { Revocations } from "./revocations.ts";
import type { RequestMeta } from "./sessions.ts";
import { IdentityKind, type Account, type Locale, type Tenant } from "./types.ts";
import { checkNewPassword, normalizeEmail, parseLocale, requireNonEmpty } from "./validation.ts";
import { startTrialAt } from "./subscriptions.ts";

export { RESET_CODE_TTL_MS } from "./address-requests.ts";
/** Tokens CompletePasswordReset accepts: reset links, and invitations (which set the first password). */
const RESET_PURPOSES = ["reset_password", "invitation"] as const;

export interface AddressRequest {
  tenantId: string;
  email: string;
  /** Empty: the account's locale. */
  locale: string;
  meta: RequestMeta;
}

export interface RecoveryFlows {
  /** Sends a new verification link to an unverified address; answers alike for any address. */
  resendVerification(input: AddressRequest): Promise<void>;
  /** Sends a reset link to an existing address (verified or not); answers alike for any address. */
  startPasswordReset(input: AddressRequest): Promise<void>;
  /** When the reset code expires, if it is valid; the code stays usable. */
  /** `tenantId`, here and in completePasswordReset: the request's, whose code budget an unknown code spends. */
  checkPasswordResetCode(input: { code: string; tenantId: string; meta: RequestMeta }): Promise<{ expiresAt: number }>;
  /** Uses the code, sets the password, verifies the address, ends every session. */
  completePasswordReset(input: { code: string; newPassword: string; tenantId: string; meta: RequestMeta }): Promise<void>;
  /** Needs the current password; ends every session but the caller's. */
  changePassword(input: { principal: SessionPrincipal; currentPassword: string; newPassword: string; meta: RequestMeta }): Promise<void>;
  listIdentities(principal: SessionPrincipal): Promise<IdentityView[]>;
  /** Never the last verified identity; not_found for another account's. */
  removeIdentity(input: { principal: SessionPrincipal; identityId: string }): Promise<void>;
}

/** What a reset link (or an invitation, src/domain/admin-users.ts) is bound to besides its account: the password it replaces. */
export const passwordFingerprint = (account: Pick<StoredAccount, "passwordHash">) => hashSecret(`password:${account.passwordHash ?? ""}`);

/**
 * Recovery's dependencies: identity's, with settling the session revocations a password change queues,
 * and the queue of address requests (src/domain/address-requests.ts) a reset or a resend goes through.
 */
export type RecoveryDeps = Omit<IdentityFlowDeps, "sessions" | "audit" | "secondFactors"> & {
  revocations: Pick<Revocations, "settle">;
  addressRequests: AddressRequests;
};

export function createRecoveryFlows(deps: RecoveryDeps): RecoveryFlows {
  const { accounts, outbox, keyring, passwords, limits, now, random } = deps;

  /**
   * The request's tenant, locale and the address's identity, when it exists and
   * the address's message budget allows one more message. Both outcomes do the
   * same lookups and count the same budgets; the caller then queues one row
   * either way (addressRequests.queue: a request or a decoy), so neither the
   * answer nor its time tells whether the address is known.
   */
  async function lookUpAddress(input: AddressRequest): Promise<{ tenant: Tenant; locale: Locale | undefined; found: FoundIdentity | undefined }> {
    const tenant = await deps.tenants.get(input.tenantId);
    const email = normalizeEmail("email", input.email);
    const locale = input.locale === "" ? undefined : parseLocale("locale", input.locale, tenant.settings.defaultLocale);
    const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
    await limits.consume("code_ip", tenant, input.meta.ip);
    const withinBudget = await limits.tryMessage(tenant, lookupHash, input.meta.ip);
    const found = await accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, lookupHash);
    return { tenant, locale, found: withinBudget ? found : undefined };
  }

  async function queue(dataKey: Buffer, account: Account, message: MessagePayload) {
    await outbox.enqueue([sealMessage(dataKey, account, message, now(), random)]);
    deps.onMessageQueued();
  }

  const passwordChangedNotice = (account: Account): MessagePayload => ({
    kind: MessageKind.PASSWORD_CHANGED_NOTICE,
    to: account.profile.email,
    locale: account.locale,
    variables: {},
  });

  /**
   * The live reset code with its account and identity, still bound to the same password and address.
   * An invitation's token (src/domain/admin-users.ts) is a reset code too: accepting it sets the first password.
   */
  async function inspectResetCode(code: string, tenantId: string, meta: RequestMeta) {
    const { tokenHash, token } = await peekOneTimeToken(deps, { field: "code", token: code, purpose: RESET_PURPOSES, tenantId, meta });
    const found = await accounts.getAccount(token.tenantId, token.accountId);
    const identity = found && (await accounts.listIdentities(found.account.id)).find((i) => i.id === token.identityId);
    if (!found || !identity || identity.lookupHash !== token.data?.address || passwordFingerprint(found.account) !== token.data?.password)
      throw tokenRefused("code");
    return { tokenHash, token, found, identity };
  }

  /**
   * When the identity removed is the account's primary email (the profile's),
   * the profile moving to its next verified email address, or to none; undefined
   * when the primary email stays.
   */
  async function primaryEmailAfter(principal: SessionPrincipal, identityId: string) {
    const { stored, account, dataKey } = await signedInAccount(principal);
    const identities = (await accounts.listIdentities(account.id)).filter((i) => i.kind === IdentityKind.EMAIL);
    const removed = identities.find((i) => i.id === identityId);
    if (!removed || account.profile.email === "" || removed.lookupHash !== keyring.blindIndex(EMAIL_INDEX, account.profile.email)) return undefined;
    const next = identities.find((i) => i.id !== identityId && i.verifiedAt !== null);
    const email = next ? identityView(dataKey, next).value : "";
    return { expectedSealed: stored.profileSealed, sealed: sealProfile(dataKey, account.id, { ...account.profile, email }), emailVerified: next !== undefined };
  }

  async function signedInAccount(principal: SessionPrincipal) {
    const found = await accounts.getAccount(principal.tenantId, principal.accountId);
    if (!found) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
    return { stored: found.account, ...openAccount(keyring, found.account, found.wrappedKey) };
  }

  return {
    async resendVerification(input) {
      const { tenant, locale, found } = await lookUpAddress(input);
      const target = found && found.identity.verifiedAt === null ? found : undefined;
      await deps.addressRequests.queue(tenant, MessageKind.VERIFY_EMAIL, target, locale);
    },

    async startPasswordReset(input) {
      const { tenant, locale, found } = await lookUpAddress(input);
      // The link is issued when the message is delivered (src/domain/address-requests.ts).
      await deps.addressRequests.queue(tenant, MessageKind.PASSWORD_RESET, found, locale);
    },

    async checkPasswordResetCode({ code, tenantId, meta }) {
      const { token } = await inspectResetCode(code, tenantId, meta);
      return { expiresAt: token.expiresAt };
    },

    async completePasswordReset({ code, newPassword, tenantId, meta }) {
      const { tokenHash, token, found, identity } = await inspectResetCode(code, tenantId, meta);
      const tenant = await deps.tenants.get(token.tenantId);
      const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
      // The rules first: a refused password does not use up the code.
      const password = checkNewPassword("new_password", newPassword, tenant.settings.passwordMinLength, [account.profile.email]);
      const passwordHash = await passwords.hash(password);
      await takeOneTimeToken(deps, "code", tokenHash, token.purpose);
      const at = now();
      // The revocation commits with the new password (src/domain/revocations.ts): the code is
      // used up, so the sessions must end without anyone retrying.
      await accounts.setPasswordHash(account.id, passwordHash, at, { reason: "password_reset" }, [
        accountEvent(EventType.PASSWORD_RESET, account, at, {}, deps.random),
      ]);
      // Opening the link proved the address, as VerifyIdentity does.
      if (identity.verifiedAt === null) {
        const events = [
          accountEvent(EventType.IDENTITY_VERIFIED, account, at, { identity_id: identity.id, identity_kind: identityKindName(identity.kind) }, deps.random),
        ];
        if (!found.account.emailVerified) events.push(accountEvent(EventType.ACCOUNT_VERIFIED, account, at, {}, deps.random));
        await accounts.markIdentityVerified({
          identityId: identity.id,
          accountId: account.id,
          at,
          state: stateAfterVerification(tenant.settings, found.account.state),
          events,
        });
        // A trial the tenant starts at verification begins at this first proof (an accepted invitation's).
        await startTrialAt(deps, tenant.settings, account, "verification", at);
      }
      await deps.revocations.settle(token.tenantId, account.id);
      // Proving the mailbox ends whatever guessing slowed or refused sign-ins to the account's addresses.
      const addresses = (await accounts.listIdentities(account.id)).filter((i) => i.kind === IdentityKind.EMAIL).map((i) => i.lookupHash);
      await Promise.all([...new Set([identity.lookupHash, ...addresses])].map((lookupHash) => limits.forgivePasswordGuesses(tenant, lookupHash)));
      // An accepted invitation set the first password: there was none to warn about.
      if (token.purpose === "reset_password") await queue(dataKey, account, passwordChangedNotice(account));
    },

    async changePassword({ principal, currentPassword, newPassword, meta }) {
      const tenant = await deps.tenants.get(principal.tenantId);
      const { stored, account, dataKey } = await signedInAccount(principal);
      const current = givenPassword("current_password", currentPassword);
      const password = checkNewPassword("new_password", newPassword, tenant.settings.passwordMinLength, [account.profile.email]);
      // Guesses at the current password count with the sign-in guesses at the address, from this source.
      const guess = await limits.passwordGuess(tenant, keyring.blindIndex(EMAIL_INDEX, account.profile.email), meta.ip);
      const matches = stored.passwordHash ? await passwords.verify(stored.passwordHash, current) : (await passwords.verifyDummy(current), false);
      if (!matches) throw unauthenticated("INVALID_CREDENTIALS", "the current password is incorrect");
      await guess.refund();
      const at = now();
      await accounts.setPasswordHash(account.id, await passwords.hash(password), at, { reason: "password_changed", keepTokenHash: principal.tokenHash }, [
        accountEvent(EventType.PASSWORD_CHANGED, account, at, {}, deps.random),
      ]);
      await deps.revocations.settle(principal.tenantId, account.id);
      await queue(dataKey, account, passwordChangedNotice(account));
    },

    async listIdentities(principal) {
      const { dataKey } = await signedInAccount(principal);
      return (await accounts.listIdentities(principal.accountId)).map((i) => identityView(dataKey, i));
    },

    async removeIdentity({ principal, identityId }) {
      requireNonEmpty("identity_id", identityId, 64);
      let result: Awaited<ReturnType<typeof accounts.removeIdentity>> = "stale";
      for (let attempt = 0; attempt < 5 && result === "stale"; attempt++) {
        const at = now();
        const removed = accountEvent(
          EventType.IDENTITY_REMOVED,
          { tenantId: principal.tenantId, id: principal.accountId },
          at,
          { identity_id: identityId },
          deps.random,
        );
        result = await accounts.removeIdentity({
          accountId: principal.accountId,
          identityId,
          at,
          profile: await primaryEmailAfter(principal, identityId),
          events: [removed],
        });
      }
      if (result === "stale") throw new DomainError("unavailable", "ACCOUNT_CHANGED", "the account changed during the removal; try again");
      if (result === "not_found") throw new DomainError("not_found", "IDENTITY_NOT_FOUND", "identity not found");
      if (result === "last_verified")
        throw new DomainError("failed_precondition", "LAST_IDENTITY", "the last verified identity of an account cannot be removed");
    },
  };
}
