// Second factors: TOTP enrollment (RFC 6238 through src/crypto/totp.ts), the
// recovery codes, the sign-in challenge a password answers with when the
// account has a factor, its completion into an AAL2 session, and step-up (what
// sensitive operations demand of the caller's session).
//
// At rest: a TOTP secret is sealed under the account's data key (erased with
// it); recovery codes are kept only as keyed hashes (HMAC under the blind-index
// key, so a dump cannot be brute-forced offline); a challenge only as the
// SHA-256 of its token, in the ephemeral store. Each TOTP step is accepted once
// (the factor's last used step only moves forward, compare-and-set), each
// recovery code once. Wrong codes count per challenge (5), per account and per
// source, progressively (src/domain/limits.ts): never a permanent lockout.
import { decryptString, encryptString, type Keyring } from "../crypto/keyring.ts";
import { qrCodeSvg, TOTP_SECRET_BYTES, totpMatchingSteps, totpSecretBase32, totpStep, totpUri } from "../crypto/totp.ts";
import { openAccount } from "./accounts.ts";
import type { AuditLog } from "./audit-log.ts";
import { createSecurityEvents, type SecurityAttempt, type SecuritySubject } from "./audit.ts";
import { DomainError, invalidArgument, permissionDenied, smsDisabled, unauthenticated } from "./errors.ts";
import { assertCanSignIn, type SignInResult } from "./identity.ts";
import { accountEvent, EventType } from "./events.ts";
import { newId } from "./ids.ts";
import type { Limits } from "./limits.ts";
import { randomDigits, oneTimeTokenHash, randomToken } from "./one-time-tokens.ts";
import { openIdentityValue, sealMessage } from "./accounts.ts";
import { MessageKind } from "./messages.ts";
import { passwordFingerprint } from "./recovery.ts";
import type { AccountReader } from "./ports/accounts.ts";
import type { Random } from "./ports/random.ts";
import type { SecondFactorStore, StoredSecondFactor } from "./ports/second-factors.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { CodeStore } from "./ports/codes.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { SessionPrincipal } from "./principal.ts";
import type { RequestMeta, Sessions } from "./sessions.ts";
import type { Tenants } from "./tenants.ts";
import { type Account, AssuranceLevel, AuthMethod, IdentityKind, type OneTimeToken, SecondFactorKind, type Tenant } from "./types.ts";

const MINUTE = 60_000;
/** How long a sign-in waits for its second factor. */
export const CHALLENGE_TTL_MS = 5 * MINUTE;
/** How long a started enrollment waits for its confirming code. */
export const ENROLLMENT_TTL_MS = 15 * MINUTE;
/** Without a second factor, a session this recent counts as a fresh authentication for step-up. */
export const STEP_UP_RECENT_MS = 10 * MINUTE;
export const RECOVERY_CODE_COUNT = 10;
/** A recovery code: 10 characters of the base32 alphabet (50 bits), shown as xxxxx-xxxxx. */
const RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
const RECOVERY_CODE_LENGTH = 10;
const RECOVERY_INDEX = "recovery-code";

const secretContext = (factorId: string) => `second-factor:${factorId}`;
/** Where an SMS code answering a challenge waits (the challenge's hash names it), and its keyed-hash namespace. */
const smsCodeKey = (tenantId: string, accountId: string, challengeHash: string) => `second_factor:${tenantId}:${accountId}:${challengeHash}`;
const SMS_CODE_INDEX = "second_factor_sms";
const SMS_CODE_ATTEMPTS = 5;

/** A factor as its owner sees it: never the secret. */
export interface SecondFactorView {
  id: string;
  kind: SecondFactorKind;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
  qrCodeSvg: string;
}

/** What SignIn answers instead of a session when a second factor is needed. */
export interface SecondFactorChallenge {
  challenge: string;
  expiresAt: number;
  kinds: SecondFactorKind[];
  /** WebAuthn request options allowing the account's passkeys, when it has one (src/domain/passkeys.ts). */
  passkeyOptionsJson?: string;
}

export type SecondFactorCode =
  | { kind: "totp"; code: string }
  | { kind: "recovery"; code: string }
  | { kind: "sms"; code: string }
  | { kind: "passkey"; code: string };

export interface SecondFactors {
  /** A new pending TOTP secret (replacing a pending one). failed_precondition TOTP_ALREADY_ENROLLED when one is confirmed. */
  startTotp(principal: SessionPrincipal): Promise<TotpEnrollment>;
  /** Confirms the pending TOTP with a current code; returns the factor and 10 new recovery codes (shown once). */
  confirmTotp(principal: SessionPrincipal, code: string, meta: RequestMeta): Promise<{ factor: SecondFactorView; recoveryCodes: string[] }>;
  /** The account's confirmed factors and its unused recovery codes' count. */
  list(accountId: string): Promise<{ factors: SecondFactorView[]; recoveryCodesRemaining: number }>;
  /** Removes a confirmed factor (step-up first). not_found SECOND_FACTOR_NOT_FOUND. */
  remove(principal: SessionPrincipal, factorId: string): Promise<void>;
  /** New recovery codes replacing the old (step-up first); failed_precondition SECOND_FACTOR_NOT_ENROLLED without a factor. */
  regenerateRecoveryCodes(principal: SessionPrincipal): Promise<string[]>;
  /**
   * After a correct password: the challenge to answer, or undefined when the account has no confirmed factor.
   * `passwordHash`: the account's (the challenge dies when it changes: a reset ends pending sign-ins too).
   * `firstMethod`: what proved the first factor (a password; "oidc" for a social sign-in).
   */
  challengeFor(tenant: Tenant, account: Account, identityId: string, passwordHash: string, firstMethod?: string): Promise<SecondFactorChallenge | undefined>;
  /** Answers a challenge with one code: a new AAL2 session. */
  complete(input: {
    tenantId: string;
    challenge: string;
    code: SecondFactorCode | undefined;
    meta: RequestMeta;
  }): Promise<SignInResult & { recoveryCodesRemaining: number }>;
  /**
   * Sends an SMS code for a challenge that offers SMS, to the account's oldest
   * verified phone; returns when it expires and the number's last two digits.
   */
  sendSmsCode(input: { tenantId: string; challenge: string; meta: RequestMeta }): Promise<{ expiresAt: number; phoneHint: string }>;
  /**
   * Step-up: the caller's session may do a sensitive operation. With a
   * confirmed factor the session must be AAL2; without one, `recent` asks for
   * a sign-in within STEP_UP_RECENT_MS. permission_denied STEP_UP_REQUIRED otherwise.
   */
  requireStepUp(principal: SessionPrincipal, options?: { recent?: boolean }): Promise<void>;
}

export interface SecondFactorDeps {
  store: SecondFactorStore;
  accounts: Pick<AccountReader, "getAccount" | "listIdentities">;
  /** SMS codes answering a challenge (the phone identities' code store). */
  codes: CodeStore;
  outbox: OutboxWriter;
  onMessageQueued: () => void;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  tokens: TokenStore;
  sessions: Pick<Sessions, "issue" | "end">;
  limits: Limits;
  audit: AuditLog;
  now: () => number;
  random: Random;
  /** false when the deployment turned SMS off (SMS_PROVIDER=none): SMS is never offered, SendSecondFactorCode answers SMS_DISABLED. */
  smsEnabled: boolean;
  passkeys: SecondFactorPasskeys;
}

/** What a challenge needs of passkeys (src/domain/passkeys.ts implements it). */
export interface SecondFactorPasskeys {
  /** Options for a second-factor challenge (allowing the account's passkeys), and the WebAuthn challenge to keep with it; undefined without passkeys. */
  challengeOptions(tenant: Tenant, factors: StoredSecondFactor[], dataKey: Buffer): Promise<{ optionsJson: string; challenge: string } | undefined>;
  /** Checks a second-factor answer against the account's passkeys and the challenge kept with the sign-in; INVALID_SECOND_FACTOR otherwise. */
  verifySecondFactor(tenant: Tenant, factors: StoredSecondFactor[], dataKey: Buffer, responseJson: string, expectedChallenge: string): Promise<void>;
}

export const stepUpRequired = () =>
  permissionDenied("STEP_UP_REQUIRED", "this operation needs a recent sign-in with the account's second factor (sign in again)");

/** A recovery code as typed (any case, dashes and spaces ignored) in its stored form; undefined when it cannot be one. */
export function normalizeRecoveryCode(raw: string): string | undefined {
  const code = raw.toLowerCase().replace(/[\s-]/g, "");
  if (code.length !== RECOVERY_CODE_LENGTH || ![...code].every((c) => RECOVERY_ALPHABET.includes(c))) return undefined;
  return code;
}

/** A new set of recovery codes for the account, and their keyed hashes (what is stored). */
export function recoveryCodeSet(keyring: Pick<Keyring, "blindIndex">, random: Random, accountId: string): { codes: string[]; hashes: string[] } {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => newRecoveryCode(random));
  return { codes, hashes: codes.map((c) => keyring.blindIndex(RECOVERY_INDEX, `${accountId}:${normalizeRecoveryCode(c)!}`)) };
}

function newRecoveryCode(random: Random): string {
  let code = "";
  // 256 is a multiple of 32: every character equally likely.
  for (const byte of random.bytes(RECOVERY_CODE_LENGTH)) code += RECOVERY_ALPHABET[byte % 32];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/** The mails telling the account's owner its second factors changed (never a code or a secret). */
export type SecondFactorNotice = typeof MessageKind.SECOND_FACTOR_ADDED | typeof MessageKind.SECOND_FACTOR_REMOVED | typeof MessageKind.RECOVERY_CODE_USED;

/**
 * Queues `kind` to the account's email address through the outbox (as the password-changed
 * notice is): if the owner did not do it, they hear of it. An account without an address gets none.
 */
export async function queueSecondFactorNotice(
  deps: Pick<SecondFactorDeps, "outbox" | "onMessageQueued" | "now" | "random">,
  dataKey: Buffer,
  account: Account,
  kind: SecondFactorNotice,
): Promise<void> {
  if (account.profile.email === "") return;
  const message = { kind, to: account.profile.email, locale: account.locale, variables: {} };
  await deps.outbox.enqueue([sealMessage(dataKey, account, message, deps.now(), deps.random)]);
  deps.onMessageQueued();
}

const viewOf = (factor: StoredSecondFactor): SecondFactorView => ({
  id: factor.id,
  kind: factor.kind as SecondFactorKind,
  createdAt: factor.confirmedAt ?? factor.createdAt,
  lastUsedAt: factor.lastUsedAt,
});

const invalidCode = () => unauthenticated("INVALID_SECOND_FACTOR", "the code is incorrect, expired or already used");
const challengeInvalid = () => unauthenticated("CHALLENGE_INVALID", "the challenge is invalid, expired or already used; sign in again");

export function createSecondFactors(deps: SecondFactorDeps): SecondFactors {
  const { store, keyring, now, random, limits } = deps;

  const recoveryHash = (accountId: string, normalized: string) => keyring.blindIndex(RECOVERY_INDEX, `${accountId}:${normalized}`);

  async function newRecoveryCodes(accountId: string): Promise<{ codes: string[]; hashes: string[] }> {
    return recoveryCodeSet(keyring, random, accountId);
  }

  async function openedAccount(tenantId: string, accountId: string) {
    const found = await deps.accounts.getAccount(tenantId, accountId);
    if (!found) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
    return { ...openAccount(keyring, found.account, found.wrappedKey), stored: found.account };
  }

  /** The TOTP step `code` stands for (one step either side of now, later than the last used), or undefined. */
  function acceptedStep(factor: StoredSecondFactor, dataKey: Buffer, code: string): number | undefined {
    const secret = decryptString(dataKey, factor.secretSealed, secretContext(factor.id));
    const current = totpStep(now());
    const candidates = [current - 1, current, current + 1].filter((s) => factor.lastUsedStep === null || s > factor.lastUsedStep);
    return totpMatchingSteps(secret, code, candidates)[0];
  }

  /** The account's oldest verified phone identity, when SMS may answer a challenge whose first factor was `firstMethod`. */
  async function smsPhone(accountId: string, firstMethod: string | undefined) {
    if (firstMethod === AuthMethod.PHONE_CODE) return undefined; // the same phone twice is one factor
    return (await deps.accounts.listIdentities(accountId)).find((i) => i.kind === IdentityKind.PHONE && i.verifiedAt !== null);
  }

  /** The live challenge behind `challenge` in the tenant, or CHALLENGE_INVALID. */
  async function liveChallenge(tenantId: string, challenge: string) {
    const tokenHash = oneTimeTokenHash(challenge);
    const pending = await deps.tokens.peek(tokenHash);
    if (pending?.purpose !== "second_factor" || pending.tenantId !== tenantId || pending.expiresAt <= now()) throw challengeInvalid();
    return { tokenHash, pending };
  }

  const smsUnavailable = () =>
    new DomainError(
      "failed_precondition",
      "SMS_SECOND_FACTOR_UNAVAILABLE",
      "this sign-in cannot be completed by SMS (no verified phone, or the phone was the first factor)",
    );

  const challengeField = (challenge: string) => {
    if (challenge === "") throw invalidArgument("challenge", "is required");
    if (challenge.length > 100) throw invalidArgument("challenge", "is not a challenge from SignIn");
    return challenge;
  };

  const totpCodeOf = (field: string, code: string) => {
    if (!/^\d{6}$/.test(code)) throw invalidArgument(field, "must be 6 digits");
    return code;
  };

  const flows = {
    async complete(input: Parameters<SecondFactors["complete"]>[0]): Promise<SecurityAttempt<SignInResult & { recoveryCodesRemaining: number }>> {
      let subject: SecuritySubject = {};
      try {
        challengeField(input.challenge);
        const code = input.code;
        if (!code) throw invalidArgument("code", "one of totp_code, recovery_code, sms_code or passkey_response_json is required");
        if (code.kind === "passkey" && code.code === "") throw invalidArgument("passkey_response_json", "is required");
        if (code.kind === "totp") totpCodeOf("totp_code", code.code);
        const recovery = code.kind === "recovery" ? normalizeRecoveryCode(code.code) : undefined;
        if (code.kind === "recovery" && recovery === undefined) throw invalidArgument("recovery_code", "must be 10 letters and digits (xxxxx-xxxxx)");
        if (code.kind === "sms") totpCodeOf("sms_code", code.code);
        const tenant = await deps.tenants.get(input.tenantId);
        const bySource = await limits.consume("code_ip", tenant, input.meta.ip);
        const { tokenHash, pending } = await liveChallenge(tenant.id, input.challenge);
        subject = { accountId: pending.accountId };
        // Counted before the check: 5 per challenge, and the account's code budget; a correct code takes them back.
        const byChallenge = await limits.consume("second_factor_challenge", tenant, tokenHash);
        const byAccount = await limits.consume("code_account", tenant, `second_factor:${pending.accountId}`);
        let phone: { id: string } | undefined;
        const { account, dataKey, stored } = await openedAccount(tenant.id, pending.accountId).catch((error: unknown) => {
          // Erased meanwhile: the challenge is gone with the account (a backend error stays what it is).
          throw error instanceof DomainError && error.reason === "SESSION_INVALID" ? challengeInvalid() : error;
        });
        // A password changed or reset since the challenge was made ends it.
        if (passwordFingerprint(stored) !== pending.data?.password) throw challengeInvalid();
        assertCanSignIn(account);

        if (code.kind === "totp") {
          const factor = (await store.list(account.id)).find((f) => f.kind === SecondFactorKind.TOTP && f.confirmedAt !== null);
          if (!factor) throw new DomainError("failed_precondition", "SECOND_FACTOR_NOT_ENROLLED", "the account has no authenticator app");
          const step = acceptedStep(factor, dataKey, code.code);
          if (step === undefined || !(await store.useStep(account.id, factor.id, step, now()))) throw invalidCode();
        } else if (code.kind === "sms") {
          phone = await smsPhone(account.id, pending.data?.firstMethod);
          if (!phone || !(await store.hasConfirmed(account.id))) throw smsUnavailable();
          const key = smsCodeKey(tenant.id, account.id, tokenHash);
          const attempt = await deps.codes.attempt(key, keyring.blindIndex(SMS_CODE_INDEX, `${key}\n${code.code}`), SMS_CODE_ATTEMPTS);
          if (attempt.outcome !== "match" || attempt.code.expiresAt <= now()) throw invalidCode();
        } else if (code.kind === "passkey") {
          const factors = await store.list(account.id);
          if (!factors.some((f) => f.kind === SecondFactorKind.PASSKEY && f.confirmedAt !== null))
            throw new DomainError("failed_precondition", "SECOND_FACTOR_NOT_ENROLLED", "the account has no passkey");
          await deps.passkeys.verifySecondFactor(tenant, factors, dataKey, code.code, pending.data?.webauthn ?? "");
        } else if (!(await store.useRecoveryCode(account.id, recoveryHash(account.id, recovery!), now()))) {
          throw invalidCode();
        }
        // The first success uses the challenge up; a concurrent second one finds it gone.
        if (!(await deps.tokens.take(tokenHash))) throw challengeInvalid();
        await Promise.all([bySource.refund(), byChallenge.refund(), byAccount.refund()]);
        // The password (when the challenge was made, about its identity), then this factor.
        const passwordAt = Number(pending.data?.passwordAt ?? pending.expiresAt - CHALLENGE_TTL_MS);
        const issued = await deps.sessions.issue(account, tenant.settings, input.meta, AssuranceLevel.AAL2, dataKey, [
          // The first proof: the password, an external identity's ID token (social sign-in) or a phone code.
          { method: pending.data?.firstMethod ?? AuthMethod.PASSWORD, identityId: pending.identityId, at: passwordAt },
          code.kind === "sms"
            ? { method: AuthMethod.PHONE_CODE, identityId: phone!.id }
            : { method: code.kind === "totp" ? AuthMethod.TOTP : code.kind === "passkey" ? AuthMethod.PASSKEY : AuthMethod.RECOVERY_CODE, identityId: "" },
        ]);
        // A deactivation or role change while the code was checked must not miss this session.
        const current = (await deps.accounts.getAccount(tenant.id, account.id))?.account;
        if (!current || current.state !== account.state || current.role !== account.role) {
          await deps.sessions.end(issued.token);
          if (current) assertCanSignIn({ ...account, state: current.state });
          throw new DomainError("unavailable", "ACCOUNT_CHANGED", "the account changed during sign-in; sign in again");
        }
        if (code.kind === "recovery") await queueSecondFactorNotice(deps, dataKey, account, MessageKind.RECOVERY_CODE_USED);
        return { ok: true, value: { ...issued, account, recoveryCodesRemaining: await store.countRecoveryCodes(account.id) }, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },
    async sendSmsCode(input: Parameters<SecondFactors["sendSmsCode"]>[0]): Promise<SecurityAttempt<{ expiresAt: number; phoneHint: string }>> {
      let subject: SecuritySubject = {};
      try {
        challengeField(input.challenge);
        const tenant = await deps.tenants.get(input.tenantId);
        if (!deps.smsEnabled) throw smsDisabled();
        await limits.consume("code_ip", tenant, input.meta.ip);
        const { tokenHash, pending } = await liveChallenge(tenant.id, input.challenge);
        subject = { accountId: pending.accountId };
        const found = await deps.accounts.getAccount(tenant.id, pending.accountId);
        if (!found) throw challengeInvalid();
        const phone = await smsPhone(found.account.id, pending.data?.firstMethod);
        if (!phone || !(await store.hasConfirmed(found.account.id))) throw smsUnavailable();
        // Counted as sign-in codes are: per IP, per number, per tenant per day.
        await limits.consume("sms_ip", tenant, input.meta.ip);
        await limits.consumeMessage(tenant, phone.lookupHash, input.meta.ip);
        await limits.consume("sms_tenant", tenant, "");
        const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
        const number = openIdentityValue(dataKey, phone.id, phone.valueSealed);
        const code = randomDigits(random, 6);
        const key = smsCodeKey(tenant.id, account.id, tokenHash);
        const expiresAt = Math.min(now() + tenant.settings.phoneCodeLifetimeMs, pending.expiresAt);
        await deps.codes.put(
          key,
          { codeHash: keyring.blindIndex(SMS_CODE_INDEX, `${key}\n${code}`), tenantId: tenant.id, accountId: account.id, expiresAt },
          expiresAt - now(),
        );
        const message = {
          kind: MessageKind.PHONE_CODE,
          to: number,
          locale: account.locale,
          variables: { code, minutes: String(Math.max(1, Math.ceil((expiresAt - now()) / 60_000))) },
        };
        await deps.outbox.enqueue([sealMessage(dataKey, account, message, now(), random)]);
        deps.onMessageQueued();
        return { ok: true, value: { expiresAt, phoneHint: number.slice(-2) }, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },
  };
  const security = createSecurityEvents(deps.audit, now);

  const api: SecondFactors = {
    async startTotp(principal) {
      const tenant = await deps.tenants.get(principal.tenantId);
      await limits.consume("code_account", tenant, `totp_enrollment:${principal.accountId}`);
      const existing = await store.list(principal.accountId);
      if (existing.some((f) => f.kind === SecondFactorKind.TOTP && f.confirmedAt !== null))
        throw new DomainError("failed_precondition", "TOTP_ALREADY_ENROLLED", "an authenticator app is enrolled already; remove it first");
      const { account, dataKey } = await openedAccount(principal.tenantId, principal.accountId);
      const secret = totpSecretBase32(random.bytes(TOTP_SECRET_BYTES));
      const at = now();
      const id = newId(at, random);
      await store.putPending({
        id,
        tenantId: account.tenantId,
        accountId: account.id,
        kind: SecondFactorKind.TOTP,
        secretSealed: encryptString(dataKey, secret, secretContext(id)),
        createdAt: at,
        confirmedAt: null,
        lastUsedStep: null,
        lastUsedAt: null,
      });
      const otpauthUri = totpUri(secret, tenant.name, account.profile.email || account.id);
      return { secret, otpauthUri, qrCodeSvg: await qrCodeSvg(otpauthUri) };
    },

    async confirmTotp(principal, rawCode) {
      const code = totpCodeOf("code", rawCode);
      const tenant = await deps.tenants.get(principal.tenantId);
      await limits.consume("code_account", tenant, `totp_enrollment:${principal.accountId}`);
      const factors = await store.list(principal.accountId);
      if (factors.some((f) => f.kind === SecondFactorKind.TOTP && f.confirmedAt !== null))
        throw new DomainError("failed_precondition", "TOTP_ALREADY_ENROLLED", "an authenticator app is enrolled already");
      const pending = factors.find((f) => f.kind === SecondFactorKind.TOTP && f.confirmedAt === null && f.createdAt + ENROLLMENT_TTL_MS > now());
      if (!pending) throw new DomainError("failed_precondition", "ENROLLMENT_NOT_STARTED", "no enrollment is pending (start one)");
      const { account, dataKey } = await openedAccount(principal.tenantId, principal.accountId);
      const step = acceptedStep(pending, dataKey, code);
      if (step === undefined) throw invalidCode();
      const { codes, hashes } = await newRecoveryCodes(principal.accountId);
      const at = now();
      const enrolled = accountEvent(
        EventType.SECOND_FACTOR_ENROLLED,
        { tenantId: principal.tenantId, id: principal.accountId },
        at,
        { factor_id: pending.id, kind: "totp" },
        random,
      );
      if (!(await store.confirm({ accountId: principal.accountId, factorId: pending.id, at, step, recoveryCodeHashes: hashes, events: [enrolled] })))
        throw new DomainError("failed_precondition", "ENROLLMENT_NOT_STARTED", "no enrollment is pending (start one)");
      await queueSecondFactorNotice(deps, dataKey, account, MessageKind.SECOND_FACTOR_ADDED);
      return { factor: viewOf({ ...pending, confirmedAt: at, lastUsedAt: at }), recoveryCodes: codes };
    },

    async list(accountId) {
      const [factors, recoveryCodesRemaining] = await Promise.all([store.list(accountId), store.countRecoveryCodes(accountId)]);
      return { factors: factors.filter((f) => f.confirmedAt !== null).map(viewOf), recoveryCodesRemaining };
    },

    async remove(principal, factorId) {
      if (factorId === "") throw invalidArgument("factor_id", "is required");
      if (factorId.length > 64) throw invalidArgument("factor_id", "is not a factor id");
      await api.requireStepUp(principal);
      const removed = accountEvent(
        EventType.SECOND_FACTOR_REMOVED,
        { tenantId: principal.tenantId, id: principal.accountId },
        now(),
        { factor_id: factorId },
        random,
      );
      if (!(await store.remove(principal.accountId, factorId, [removed])))
        throw new DomainError("not_found", "SECOND_FACTOR_NOT_FOUND", "no such second factor");
      const { account, dataKey } = await openedAccount(principal.tenantId, principal.accountId);
      await queueSecondFactorNotice(deps, dataKey, account, MessageKind.SECOND_FACTOR_REMOVED);
    },

    async regenerateRecoveryCodes(principal) {
      await api.requireStepUp(principal);
      if (!(await store.hasConfirmed(principal.accountId)))
        throw new DomainError("failed_precondition", "SECOND_FACTOR_NOT_ENROLLED", "recovery codes come with a second factor: enroll one first");
      const { codes, hashes } = await newRecoveryCodes(principal.accountId);
      const at = now();
      const regenerated = accountEvent(EventType.RECOVERY_CODES_REGENERATED, { tenantId: principal.tenantId, id: principal.accountId }, at, {}, random);
      await store.replaceRecoveryCodes(principal.accountId, hashes, at, [regenerated]);
      return codes;
    },

    async challengeFor(tenant, account, identityId, passwordHash, firstMethod = AuthMethod.PASSWORD) {
      const factors = (await store.list(account.id)).filter((f) => f.confirmedAt !== null);
      if (factors.length === 0) return undefined;
      const kinds = [...new Set(factors.map((f) => f.kind as SecondFactorKind))];
      if (deps.smsEnabled && (await smsPhone(account.id, firstMethod))) kinds.push(SecondFactorKind.SMS);
      if ((await store.countRecoveryCodes(account.id)) > 0) kinds.push(SecondFactorKind.RECOVERY_CODE);
      const passkey = kinds.includes(SecondFactorKind.PASSKEY)
        ? await deps.passkeys.challengeOptions(tenant, factors, (await openedAccount(tenant.id, account.id)).dataKey)
        : undefined;
      const challenge = randomToken(random);
      const expiresAt = now() + CHALLENGE_TTL_MS;
      const record: OneTimeToken = {
        purpose: "second_factor",
        tenantId: tenant.id,
        accountId: account.id,
        identityId,
        expiresAt,
        data: { passwordAt: String(now()), password: passwordFingerprint({ passwordHash }), firstMethod, ...(passkey ? { webauthn: passkey.challenge } : {}) },
      };
      await deps.tokens.put(oneTimeTokenHash(challenge), record, CHALLENGE_TTL_MS);
      return { challenge, expiresAt, kinds, ...(passkey ? { passkeyOptionsJson: passkey.optionsJson } : {}) };
    },

    sendSmsCode: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.send_second_factor_code", rateLimited: "session.rate_limited" }, () =>
        flows.sendSmsCode(input),
      ),

    complete: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.second_factor", rateLimited: "session.rate_limited" }, () => flows.complete(input)),

    async requireStepUp(principal, options = {}) {
      if (principal.assurance >= AssuranceLevel.AAL2) return;
      if (await store.hasConfirmed(principal.accountId)) throw stepUpRequired();
      if (options.recent && principal.authenticatedAt + STEP_UP_RECENT_MS < now()) throw stepUpRequired();
    },
  };
  return api;
}
