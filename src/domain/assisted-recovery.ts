// Customer service: an admin who identified a person by phone sets a new email
// address for them, issues a one-time temporary password that must be
// changed at the first sign-in, or removes the second factors of someone who
// lost their device. All need a stated reason (audited by the
// service layer with it), are refused against admins and super admins unless
// the caller is a super admin (assertMayManageAccount), are rate limited per
// admin and per account, and end every session of the account.
// See docs/administration.md#customer-service.
import { accountEvent, EventType } from "./events.ts";
import type { Keyring } from "../crypto/keyring.ts";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { EMAIL_INDEX, openAccount, sealIdentityValue, sealMessage, sealProfile } from "./accounts.ts";
import { assertMayManageAccount } from "./authorization.ts";
import { DomainError, invalidArgument } from "./errors.ts";
import { linkBase } from "./found-identity.ts";
import { isId } from "./ids.ts";
import type { Limits } from "./limits.ts";
import { MessageKind } from "./messages.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { SecondFactorStore } from "./ports/second-factors.ts";
import { queueSecondFactorNotice } from "./second-factors.ts";
import { discardLinkToken, issueLinkToken } from "./one-time-tokens.ts";
import { type AccountReader, type AccountWriter, DuplicateIdentityError } from "./ports/accounts.ts";
import type { Random } from "./ports/random.ts";
import type { TokenStore } from "./ports/tokens.ts";
import { actorOf, type Principal } from "./principal.ts";
import type { Revocations } from "./revocations.ts";
import type { Tenants } from "./tenants.ts";
import { type Account, AccountState, IdentityKind } from "./types.ts";
import { normalizeEmail } from "./validation.ts";

const MINUTE = 60_000;
/** How long a temporary password may be used: long enough to read it over the phone and sign in, no longer. */
export const TEMPORARY_PASSWORD_TTL_MS = 24 * 60 * MINUTE;
/** Unambiguous characters (no 0/O, 1/l/I): read aloud over the phone. */
const ALPHABET = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY2346789";
const REASON_MAX = 1000;

export interface AssistedTarget {
  principal: Principal;
  tenantId: string;
  accountId: string;
  reason: string;
}

export interface AssistedRecovery {
  /**
   * Points the account's email identity at `newEmail`: the old address is told; with
   * `attested` (the admin vouches for the address) it is verified at once, else a
   * verification link goes to it and signing in waits for it. Every session ends.
   */
  changeEmail(input: AssistedTarget & { newEmail: string; attested: boolean }): Promise<Account>;
  /** A new random password, usable once until `expiresAt`: SignIn then requires a new one (PASSWORD_CHANGE_REQUIRED). Every session ends. */
  issueTemporaryPassword(input: AssistedTarget): Promise<{ password: string; expiresAt: number; account: Account }>;
  /**
   * Lost device: removes every confirmed second factor (each a second_factor.removed event)
   * and the recovery codes; the person is told by mail; every session ends. Returns how many factors went.
   */
  resetSecondFactors(input: AssistedTarget): Promise<{ removedFactors: number }>;
}

/** `length` characters drawn uniformly from ALPHABET (rejection sampling: no character likelier than another). */
function randomPassword(random: Random, length: number): string {
  const limit = 256 - (256 % ALPHABET.length);
  let out = "";
  while (out.length < length) {
    for (const byte of random.bytes(length * 2)) {
      if (byte < limit && out.length < length) out += ALPHABET[byte % ALPHABET.length];
    }
  }
  return out;
}

export function createAssistedRecovery(deps: {
  accounts: AccountReader & AccountWriter;
  tenants: Pick<Tenants, "get">;
  tokens: TokenStore;
  keyring: Keyring;
  passwords: PasswordHasher;
  limits: Limits;
  revocations: Pick<Revocations, "revokeAll" | "settle">;
  now: () => number;
  random: Random;
  publicUrl: string;
  verificationLinkTtlMs: number;
  outbox: OutboxWriter;
  onMessageQueued: () => void;
  secondFactors: SecondFactorStore;
}): AssistedRecovery {
  const { accounts, keyring } = deps;
  const notFound = () => new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");

  /** The checks both share, before anything changes: reason, target, caller's rights, rate limits. */
  async function prepare(input: AssistedTarget) {
    const reason = input.reason.trim();
    if (reason === "")
      throw invalidArgument("reason", "is required: say why, and how the person was identified (it is recorded in the audit trail)", "REASON_REQUIRED");
    if ([...reason].length > REASON_MAX) throw invalidArgument("reason", `must be at most ${REASON_MAX} characters`);
    if (input.accountId === "") throw invalidArgument("account_id", "is required");
    if (!isId(input.accountId)) throw notFound();
    const tenant = await deps.tenants.get(input.tenantId);
    const found = await accounts.getAccount(input.tenantId, input.accountId);
    if (!found) throw notFound();
    assertMayManageAccount(input.principal, found.account);
    if (found.account.state === AccountState.DEACTIVATED)
      throw new DomainError("failed_precondition", "ACCOUNT_DEACTIVATED", "the account is deactivated: activate it first");
    // Per admin and per account: a compromised admin session cannot take over accounts in bulk.
    await deps.limits.consume("assisted_recovery_caller", tenant, actorOf(input.principal));
    await deps.limits.consume("assisted_recovery_account", tenant, input.accountId);
    return { tenant, found };
  }

  return {
    async changeEmail(input) {
      const newEmail = normalizeEmail("new_email", input.newEmail);
      const { tenant, found } = await prepare(input);
      const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
      const identity = (await accounts.listIdentities(account.id)).find((i) => i.kind === IdentityKind.EMAIL);
      if (!identity) throw new DomainError("failed_precondition", "NO_EMAIL_IDENTITY", "the account has no email address to change");
      const lookupHash = keyring.blindIndex(EMAIL_INDEX, newEmail);
      if (lookupHash === identity.lookupHash) throw invalidArgument("new_email", "is the account's current address");
      const at = deps.now();
      const oldEmail = account.profile.email;
      const messages = [
        // The old address is told, in any case: if this was not the owner's wish, they hear of it.
        sealMessage(
          dataKey,
          account,
          { kind: MessageKind.EMAIL_CHANGED_NOTICE, to: oldEmail, locale: account.locale, variables: { newEmail } },
          at,
          deps.random,
        ),
      ];
      // Not attested: the new address proves itself through a link bound to it (and to no later address).
      const link = input.attested
        ? undefined
        : await issueLinkToken(deps, "verify_email", identity, deps.verificationLinkTtlMs, { address: lookupHash, by: "admin" });
      if (link) {
        const url = `${linkBase(tenant, deps.publicUrl)}/verify-email?token=${link.token}`;
        const variables = { link: url, expiresInMinutes: String(Math.round(deps.verificationLinkTtlMs / MINUTE)) };
        messages.push(sealMessage(dataKey, account, { kind: MessageKind.VERIFY_EMAIL, to: newEmail, locale: account.locale, variables }, at, deps.random));
      }
      const profile = { ...account.profile, email: newEmail };
      let changed: boolean;
      try {
        changed = await accounts.changeEmail({
          accountId: account.id,
          identityId: identity.id,
          lookupHash,
          valueSealed: sealIdentityValue(dataKey, identity.id, newEmail),
          previousProfileSealed: found.account.profileSealed,
          profileSealed: sealProfile(dataKey, account.id, profile),
          at,
          messages,
          verified: input.attested,
        });
      } catch (error) {
        if (link) await discardLinkToken(deps, link.token);
        if (error instanceof DuplicateIdentityError) throw new DomainError("already_exists", "EMAIL_TAKEN", "another account of the tenant has this address");
        throw error;
      }
      if (!changed) {
        if (link) await discardLinkToken(deps, link.token);
        throw new DomainError("unavailable", "CONCURRENT_UPDATE", "the account changed meanwhile; retry");
      }
      deps.onMessageQueued();
      // Whoever held a session under the old address holds none now (queued first: it holds whatever Redis does).
      await deps.revocations.revokeAll(input.tenantId, account.id, "email_changed");
      return { ...account, profile, emailVerified: input.attested, updatedAt: at };
    },

    async issueTemporaryPassword(input) {
      const { tenant } = await prepare(input);
      const password = randomPassword(deps.random, Math.max(20, tenant.settings.passwordMinLength));
      const passwordHash = await deps.passwords.hash(password);
      const at = deps.now();
      const expiresAt = at + TEMPORARY_PASSWORD_TTL_MS;
      const written = await accounts.updateAccount({
        tenantId: input.tenantId,
        accountId: input.accountId,
        at,
        change: (current, _others, wrappedKey) => {
          assertMayManageAccount(input.principal, current);
          const { account, dataKey } = openAccount(keyring, current, wrappedKey);
          // Told by mail (never the password itself): if the owner did not call, they hear of it.
          const notice = sealMessage(
            dataKey,
            account,
            { kind: MessageKind.PASSWORD_CHANGED_NOTICE, to: account.profile.email, locale: account.locale, variables: {} },
            at,
            deps.random,
          );
          const events = [accountEvent(EventType.PASSWORD_RESET, current, at, { temporary: true }, deps.random)];
          return { passwordHash, temporaryPasswordUntil: expiresAt, endSessions: "password_reset", messages: [notice], events };
        },
      });
      if (!written) throw notFound();
      deps.onMessageQueued();
      await deps.revocations.settle(input.tenantId, input.accountId);
      return { password, expiresAt, account: openAccount(keyring, written.account, written.wrappedKey).account };
    },

    async resetSecondFactors(input) {
      const { found } = await prepare(input);
      const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
      const at = deps.now();
      let removedFactors = 0;
      for (const factor of await deps.secondFactors.list(account.id)) {
        if (factor.confirmedAt === null) continue;
        const removed = accountEvent(EventType.SECOND_FACTOR_REMOVED, found.account, at, { factor_id: factor.id, by: "admin" }, deps.random);
        // Removing the last factor deletes the recovery codes in the same transaction.
        if (await deps.secondFactors.remove(account.id, factor.id, [removed])) removedFactors++;
      }
      // Codes left without any factor (none should be) go too: the reset leaves nothing to answer with.
      await deps.secondFactors.replaceRecoveryCodes(account.id, [], at);
      if (removedFactors > 0) await queueSecondFactorNotice(deps, dataKey, account, MessageKind.SECOND_FACTOR_REMOVED);
      // Whoever holds a session (perhaps the one who has the device) holds none now.
      await deps.revocations.revokeAll(input.tenantId, account.id, "sessions_revoked");
      return { removedFactors };
    },
  };
}
