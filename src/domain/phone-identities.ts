// Phone identities and guests (issue 10; docs/architecture.md, "Identities").
// - Sign-in by SMS code: SendSignInCode sends a 6-digit code; SignIn with it
//   signs in, and acts as sign-up (Webcom) unless the tenant is invite-only: a
//   number not yet known gets a pending account with an unverified phone
//   identity — exactly as an email sign-up does, so the same work is done
//   whether or not the number is known — and proving the code activates it.
// - AddPhone / VerifyPhone: a signed-in person attaches a phone, proven by a
//   code; a guest doing so is upgraded (same account, guest identity retired).
// - Guests: a new account with a GUEST identity and a session, never while the
//   call carries a bearer.
// Codes: 6 random digits, kept in the ephemeral store only as an HMAC under a
// key naming their purpose, tenant (and account) and phone; single use; at most
// CODE_ATTEMPTS wrong tries per code, and code checks counted per IP and per
// phone; sends counted per IP, per phone (silently) and per tenant per day.
import type { Keyring } from "../crypto/keyring.ts";
import { GUEST_INDEX, newAccount, newIdentity, openAccount, openIdentityProfile, PHONE_INDEX, sealIdentityProfile, sealMessage } from "./accounts.ts";
import { checkCustomAttributes } from "./profile.ts";
import { type AddressRequests, sealDecoy } from "./address-requests.ts";
import type { AuditLog } from "./audit-log.ts";
import { createSecurityEvents, type SecurityAttempt, type SecuritySubject } from "./audit.ts";
import { accountEvent, EventType } from "./events.ts";
import type { BlockingHooks } from "./hooks.ts";
import { DomainError, invalidArgument, smsDisabled, unauthenticated } from "./errors.ts";
import { assertCanSignIn, type IdentityFlowDeps, type SecondFactorNeeded, type SignInResult, stateAfterVerification } from "./identity.ts";
import type { Limits } from "./limits.ts";
import { MessageKind, type MessagePayload } from "./messages.ts";
import { randomDigits, randomToken } from "./one-time-tokens.ts";
import { normalizePhone } from "./phone.ts";
import { type AccountEraser, type AccountReader, type AccountWriter, DuplicateIdentityError, type StoredAccount } from "./ports/accounts.ts";
import type { CodeStore } from "./ports/codes.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import { actorOf, type SessionPrincipal } from "./principal.ts";
import type { RequestMeta, Sessions } from "./sessions.ts";
import type { Tenants } from "./tenants.ts";
import { AccountState, AssuranceLevel, AuthMethod, IdentityKind, type Locale, Role, type SessionRecord, type Tenant } from "./types.ts";
import { parseLocale } from "./validation.ts";
import { startTrialAt, trialAtCreation } from "./subscriptions.ts";

/** Wrong tries one code survives; the next send replaces it. */
export const CODE_ATTEMPTS = 5;
export const PHONE_CODE_DIGITS = 6;
const CODE_SHAPE = /^[0-9]{6}$/;
/** The blind-index namespace codes are hashed in (an HMAC: a dump of Redis does not give the digits). */
const CODE_INDEX = "phone_code";

export interface PhoneIdentityDeps {
  /** Erasing: only a pending sign-up's never-proven account, when its number is proven by someone signed in. */
  accounts: AccountReader & AccountWriter & Pick<AccountEraser, "eraseAccount">;
  outbox: OutboxWriter;
  codes: CodeStore;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  sessions: Pick<Sessions, "issue">;
  /** A phone code is a first factor: an account with a second factor answers its challenge before it gets a session. */
  secondFactors: IdentityFlowDeps["secondFactors"];
  /** Told when a trial starts after the account exists (at the first proof, at a guest's upgrade). */
  subscriptionCache: IdentityFlowDeps["subscriptionCache"];
  limits: Limits;
  now: () => number;
  random: Random;
  onMessageQueued: () => void;
  audit: AuditLog;
  /** The tenant's blocking hooks (before_sign_up, for a guest); none: no hook is asked. */
  hooks?: Pick<BlockingHooks, "check">;
  /** How the owner of a number someone else tried to add hears of it: one request row (a decoy when there is nobody to tell). */
  addressRequests: Pick<AddressRequests, "queue">;
  /** false when the deployment turned SMS off (SMS_PROVIDER=none): no code is queued, failed_precondition SMS_DISABLED. */
  smsEnabled: boolean;
}

export interface PhoneIdentities {
  /** Sends a sign-in code; answers the same whether or not the number is known. */
  sendSignInCode(input: { tenantId: string; phone: string; locale: string; meta: RequestMeta }): Promise<void>;
  /** Signs in with a code (creating the account on its first proven use). */
  signInWithPhoneCode(input: { tenantId: string; phone: string; code: string; meta: RequestMeta }): Promise<SignInResult | SecondFactorNeeded>;
  /** A new account with a guest identity, signed in. */
  signInAsGuest(input: { tenantId: string; meta: RequestMeta }): Promise<SignInResult>;
  /** Sends a code to a phone the signed-in person wants to add; the same answer when the number is someone else's. */
  addPhone(input: { principal: SessionPrincipal; phone: string; locale: string; meta: RequestMeta }): Promise<void>;
  /** Attaches the phone proven by the code to the signed-in account (retiring a guest identity). */
  verifyPhone(input: { principal: SessionPrincipal; phone: string; code: string; meta: RequestMeta }): Promise<void>;
  /** The profile of the identity the session signed in with (Webcom's identity profile). */
  getIdentityProfile(session: SessionRecord): Promise<{ identityId: string; profile: Record<string, unknown> }>;
  /** Replaces that profile (a JSON object within the custom attributes' limits). */
  updateIdentityProfile(
    session: SessionRecord,
    profile: Record<string, unknown> | undefined,
  ): Promise<{ identityId: string; profile: Record<string, unknown> }>;
}

/**
 * The identity a session signed in with: its first proof about an identity;
 * failed_precondition NO_SIGN_IN_IDENTITY for a session older than the
 * recorded proofs, or one opened otherwise.
 */
export function signInIdentityOf(session: SessionRecord): string {
  const identityId = session.methods.find((m) => m.identityId !== "")?.identityId;
  if (!identityId)
    throw new DomainError("failed_precondition", "NO_SIGN_IN_IDENTITY", "this session does not name the identity it signed in with; sign in again");
  return identityId;
}

/** Where a pending code is kept: by purpose, tenant, account (adding a phone) and the phone's blind index. */
const codeKey = (purpose: "sign_in" | "add_phone", tenantId: string, accountId: string, lookupHash: string) =>
  `${purpose}:${tenantId}:${accountId}:${lookupHash}`;

export function createPhoneIdentities(deps: PhoneIdentityDeps): PhoneIdentities {
  const { accounts, keyring, limits, now, random } = deps;
  const codeHash = (key: string, code: string) => keyring.blindIndex(CODE_INDEX, `${key}\n${code}`);
  const phoneOf = (tenant: Tenant, raw: string, field: string) => normalizePhone(raw, tenant.settings.phoneDefaultRegion || undefined, field);
  const lookupOf = (phone: string) => keyring.blindIndex(PHONE_INDEX, phone);
  const codeRefused = (field: string) => invalidArgument(field, "is wrong, expired or already used", "CODE_INVALID");

  function givenCode(field: string, code: string): string {
    if (code.length === 0) throw invalidArgument(field, "is required");
    if (!CODE_SHAPE.test(code)) throw invalidArgument(field, `must be ${PHONE_CODE_DIGITS} digits`);
    return code;
  }

  /** Counts a send: per IP (refused), per phone (false: dropped silently), and against the tenant's daily SMS budget. */
  async function countSend(tenant: Tenant, lookupHash: string, ip: string): Promise<boolean> {
    await limits.consume("sms_ip", tenant, ip);
    if (!(await limits.tryMessage(tenant, lookupHash, ip))) return false;
    await limits.consume("sms_tenant", tenant, "");
    return true;
  }

  /** A new code stored under `key`, and the message carrying it to `phone`. */
  async function newCode(tenant: Tenant, key: string, accountId: string, phone: string, locale: Locale): Promise<MessagePayload> {
    const code = randomDigits(random, PHONE_CODE_DIGITS);
    const lifetime = tenant.settings.phoneCodeLifetimeMs;
    await deps.codes.put(key, { codeHash: codeHash(key, code), tenantId: tenant.id, accountId, expiresAt: now() + lifetime }, lifetime);
    return { kind: MessageKind.PHONE_CODE, to: phone, locale, variables: { code, minutes: String(Math.ceil(lifetime / 60_000)) } };
  }

  /** One attempt at the code under `key`, counted per IP and per phone first; the code refused alike whatever went wrong. */
  async function checkCode(tenant: Tenant, key: string, lookupHash: string, code: string, field: string, meta: RequestMeta) {
    await limits.consume("code_ip", tenant, meta.ip);
    await limits.consume("code_account", tenant, `phone:${lookupHash}`);
    const attempt = await deps.codes.attempt(key, codeHash(key, code), CODE_ATTEMPTS);
    if (attempt.outcome !== "match" || attempt.code.expiresAt <= now()) throw codeRefused(field);
    return attempt.code;
  }

  async function enqueueFor(stored: StoredAccount, wrappedKey: string, message: MessagePayload) {
    const dataKey = keyring.unwrapDataKey(stored.id, wrappedKey);
    await deps.outbox.enqueue([sealMessage(dataKey, stored, message, now(), random)]);
  }

  /** The session's sign-in identity, still the account's; not_found IDENTITY_NOT_FOUND once removed. */
  async function signInIdentity(session: SessionRecord) {
    const identityId = signInIdentityOf(session);
    const found = await accounts.getAccount(session.tenantId, session.accountId);
    const identity = found && (await accounts.listIdentities(session.accountId)).find((i) => i.id === identityId);
    if (!found || !identity) throw new DomainError("not_found", "IDENTITY_NOT_FOUND", "the identity this session signed in with is gone");
    return { identity, dataKey: keyring.unwrapDataKey(found.account.id, found.wrappedKey) };
  }

  const flows = {
    async sendSignInCode(input: Parameters<PhoneIdentities["sendSignInCode"]>[0]): Promise<SecurityAttempt<void>> {
      let subject: SecuritySubject = {};
      try {
        const tenant = await deps.tenants.get(input.tenantId);
        const phone = phoneOf(tenant, input.phone, "phone");
        const locale = parseLocale("locale", input.locale, tenant.settings.defaultLocale);
        const lookupHash = lookupOf(phone);
        if (!deps.smsEnabled) throw smsDisabled();
        if (!(await countSend(tenant, lookupHash, input.meta.ip))) return { ok: true, value: undefined, subject };
        const key = codeKey("sign_in", tenant.id, "", lookupHash);
        const message = await newCode(tenant, key, "", phone, locale);
        const at = now();
        if (tenant.settings.inviteOnly) {
          // Nobody new signs up: a known number gets the code, an unknown one a decoy row (the same write).
          const found = await accounts.findByIdentity(tenant.id, IdentityKind.PHONE, lookupHash);
          if (found) await enqueueFor(found.account, found.wrappedKey, message);
          else await deps.outbox.enqueue([sealDecoy(keyring, tenant.id, MessageKind.PHONE_CODE, at, random)]);
          subject = { accountId: found?.account.id ?? "" };
        } else {
          // As an email sign-up: a pending account whose unverified phone the code proves — or, when
          // the number is taken, the code goes to its owner's account instead.
          const { dataKey, ...rows } = newAccount(keyring, {
            tenantId: tenant.id,
            identity: { kind: IdentityKind.PHONE, value: phone, lookupHash, verifiedAt: null },
            passwordHash: null,
            role: Role.USER,
            state: AccountState.PENDING_VERIFICATION,
            locale,
            at,
            random,
          });
          rows.account = { ...rows.account, ...trialAtCreation(tenant.settings, rows.identity, at) };
          try {
            const events = [accountEvent(EventType.ACCOUNT_CREATED, rows.account, at, { identity_id: rows.identity.id, identity_kind: "phone" }, random)];
            await accounts.createAccount({ ...rows, messages: [sealMessage(dataKey, rows.account, message, at, random)], events });
            subject = { accountId: rows.account.id };
            // A known number's path looks its holder up and queues a row after the refused insert: the same
            // lookup and a decoy row here, so the answer takes as long (test/integration/timing-oracle.test.ts).
            await accounts.findByIdentity(tenant.id, IdentityKind.PHONE, lookupHash);
            await deps.outbox.enqueue([sealDecoy(keyring, tenant.id, MessageKind.PHONE_CODE, at, random)]);
          } catch (error) {
            if (!(error instanceof DuplicateIdentityError)) throw error;
            const found = await accounts.findByIdentity(tenant.id, IdentityKind.PHONE, lookupHash);
            if (found) await enqueueFor(found.account, found.wrappedKey, message);
            subject = { accountId: found?.account.id ?? "" };
          }
        }
        deps.onMessageQueued();
        return { ok: true, value: undefined, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async signInWithPhoneCode(input: Parameters<PhoneIdentities["signInWithPhoneCode"]>[0]): Promise<SecurityAttempt<SignInResult | SecondFactorNeeded>> {
      let subject: SecuritySubject = {};
      try {
        const tenant = await deps.tenants.get(input.tenantId);
        const phone = phoneOf(tenant, input.phone, "phone_code.phone");
        const code = givenCode("phone_code.code", input.code);
        const lookupHash = lookupOf(phone);
        await checkCode(tenant, codeKey("sign_in", tenant.id, "", lookupHash), lookupHash, code, "phone_code.code", input.meta);
        const found = await accounts.findByIdentity(tenant.id, IdentityKind.PHONE, lookupHash);
        if (!found) throw codeRefused("phone_code.code"); // invite-only and unknown, or purged meanwhile
        subject = { accountId: found.account.id };
        let stored = found.account;
        if (found.identity.verifiedAt === null) {
          // The first proven use: the pending account becomes the person's (sign-in acts as sign-up).
          const state = stateAfterVerification(tenant.settings, stored.state);
          const at = now();
          const verified = { identity_id: found.identity.id, identity_kind: "phone" };
          const events = [accountEvent(EventType.IDENTITY_VERIFIED, stored, at, verified, random)];
          if (stored.state === AccountState.PENDING_VERIFICATION) events.push(accountEvent(EventType.ACCOUNT_VERIFIED, stored, at, {}, random));
          if (!(await accounts.markIdentityVerified({ identityId: found.identity.id, accountId: stored.id, at, state, events })))
            throw codeRefused("phone_code.code");
          stored = { ...stored, state };
          // A trial the tenant starts at verification begins at this first proof.
          stored = (await startTrialAt(deps, tenant.settings, stored, "verification", at)) ?? stored;
        }
        const { account, dataKey } = openAccount(keyring, stored, found.wrappedKey);
        assertCanSignIn(account);
        const secondFactor = await deps.secondFactors.challengeFor(tenant, account, found.identity.id, stored.passwordHash ?? "", AuthMethod.PHONE_CODE);
        if (secondFactor) return { ok: true, value: { account, secondFactor }, subject };
        const issued = await deps.sessions.issue(account, tenant.settings, input.meta, AssuranceLevel.AAL1, dataKey, [
          { method: AuthMethod.PHONE_CODE, identityId: found.identity.id },
        ]);
        return { ok: true, value: { ...issued, account }, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async signInAsGuest(input: Parameters<PhoneIdentities["signInAsGuest"]>[0]): Promise<SecurityAttempt<SignInResult>> {
      let subject: SecuritySubject = {};
      try {
        const tenant = await deps.tenants.get(input.tenantId);
        if (tenant.settings.inviteOnly) throw new DomainError("failed_precondition", "SIGN_UP_CLOSED", "sign-up is by invitation only");
        await limits.consume("guest_ip", tenant, input.meta.ip);
        // A guest is always a new account: the tenant's before_sign_up hook may refuse it.
        await deps.hooks?.check("before_sign_up", { tenantId: tenant.id, identityKind: IdentityKind.GUEST, meta: input.meta });
        const at = now();
        // The guest's value: a random id nobody can type (a guest never signs in again; its session is its only way in).
        const value = `guest_${randomToken(random, 16)}`;
        const { dataKey, ...rows } = newAccount(keyring, {
          tenantId: tenant.id,
          identity: { kind: IdentityKind.GUEST, value, lookupHash: keyring.blindIndex(GUEST_INDEX, value), verifiedAt: at },
          passwordHash: null,
          role: Role.USER,
          state: AccountState.ACTIVE,
          locale: tenant.settings.defaultLocale,
          at,
          random,
        });
        const events = [accountEvent(EventType.ACCOUNT_CREATED, rows.account, at, { identity_id: rows.identity.id, identity_kind: "guest" }, random)];
        await accounts.createAccount({ ...rows, messages: [], events });
        subject = { accountId: rows.account.id };
        const { account } = openAccount(keyring, rows.account, rows.wrappedKey);
        const issued = await deps.sessions.issue(account, tenant.settings, input.meta, AssuranceLevel.AAL1, dataKey, [
          { method: AuthMethod.GUEST, identityId: rows.identity.id },
        ]);
        return { ok: true, value: { ...issued, account }, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async addPhone(input: Parameters<PhoneIdentities["addPhone"]>[0]): Promise<SecurityAttempt<void>> {
      const { principal } = input;
      const subject: SecuritySubject = { tenantId: principal.tenantId, accountId: principal.accountId };
      try {
        const tenant = await deps.tenants.get(principal.tenantId);
        const phone = phoneOf(tenant, input.phone, "phone");
        const lookupHash = lookupOf(phone);
        const own = await accounts.getAccount(tenant.id, principal.accountId);
        if (!own) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
        const locale = parseLocale("locale", input.locale, own.account.locale as Locale);
        if (!deps.smsEnabled) throw smsDisabled();
        if (!(await countSend(tenant, lookupHash, input.meta.ip))) return { ok: true, value: undefined, subject };
        const holder = await accounts.findByIdentity(tenant.id, IdentityKind.PHONE, lookupHash);
        // A number proven by someone (another account, or this one already) is never moved and gets no code:
        // the same answer, a decoy row for the same write. A pending sign-up's unproven number is free to prove.
        if (holder && (holder.identity.verifiedAt !== null || holder.account.id === principal.accountId)) {
          // Another account's owner is told by mail, as for a taken address (a phone-only owner has no address:
          // a decoy row then, the same write); the caller's own number needs no notice.
          const other = holder.account.id !== principal.accountId ? holder : undefined;
          const tell = other && openAccount(keyring, other.account, other.wrappedKey).account.profile.email !== "" ? other : undefined;
          await deps.addressRequests.queue(tenant, MessageKind.PHONE_EXISTING, tell, undefined);
          return { ok: true, value: undefined, subject: { ...subject, outcome: "IDENTITY_EXISTS" } };
        }
        const message = await newCode(tenant, codeKey("add_phone", tenant.id, principal.accountId, lookupHash), principal.accountId, phone, locale);
        await enqueueFor(own.account, own.wrappedKey, message);
        deps.onMessageQueued();
        return { ok: true, value: undefined, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async verifyPhone(input: Parameters<PhoneIdentities["verifyPhone"]>[0]): Promise<SecurityAttempt<void>> {
      const { principal } = input;
      const subject: SecuritySubject = { tenantId: principal.tenantId, accountId: principal.accountId };
      try {
        const tenant = await deps.tenants.get(principal.tenantId);
        const phone = phoneOf(tenant, input.phone, "phone");
        const code = givenCode("code", input.code);
        const lookupHash = lookupOf(phone);
        await checkCode(tenant, codeKey("add_phone", tenant.id, principal.accountId, lookupHash), lookupHash, code, "code", input.meta);
        for (let attempt = 0; attempt < 3; attempt++) {
          const own = await accounts.getAccount(tenant.id, principal.accountId);
          if (!own) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
          const dataKey = keyring.unwrapDataKey(own.account.id, own.wrappedKey);
          const at = now();
          const identity = newIdentity(dataKey, own.account, { kind: IdentityKind.PHONE, value: phone, lookupHash, verifiedAt: at }, at, random);
          // A guest adding a phone is upgraded: same account, its guest identity retired.
          const retire = (await accounts.listIdentities(own.account.id)).filter((i) => i.kind === IdentityKind.GUEST).map((i) => i.id);
          try {
            const events = [accountEvent(EventType.IDENTITY_ADDED, own.account, at, { identity_id: identity.id, identity_kind: "phone" }, random)];
            if (await accounts.addIdentity({ tenantId: tenant.id, accountId: own.account.id, identity, retire, at, events })) {
              // A guest becoming a person starts the tenant's trial now (guests start none).
              if (retire.length > 0) await startTrialAt(deps, tenant.settings, own.account, "upgrade", at);
              return { ok: true, value: undefined, subject };
            }
          } catch (error) {
            if (!(error instanceof DuplicateIdentityError)) throw error;
            // A sign-in code asked for and never used left a pending account holding the number unproven:
            // the code just proved it is this caller's, so that never-used account goes (once) and the add is retried.
            const holder = await accounts.findByIdentity(tenant.id, IdentityKind.PHONE, lookupHash);
            if (attempt === 0 && holder && holder.identity.verifiedAt === null && holder.account.state === AccountState.PENDING_VERIFICATION) {
              await accounts.eraseAccount({
                tenantId: tenant.id,
                accountId: holder.account.id,
                at,
                check: (current) => {
                  if (current.state !== AccountState.PENDING_VERIFICATION)
                    throw new DomainError("failed_precondition", "IDENTITY_TAKEN", "this phone number cannot be added to this account");
                },
              });
              continue;
            }
            // Proven by another account: never moved.
            throw new DomainError("failed_precondition", "IDENTITY_TAKEN", "this phone number cannot be added to this account");
          }
        }
        throw new DomainError("unavailable", "ACCOUNT_CHANGED", "the account changed meanwhile; try again");
      } catch (error) {
        return { ok: false, error, subject };
      }
    },
  };

  // Every outcome is an audit event, as for email sign-ups and sign-ins.
  const security = createSecurityEvents(deps.audit, now);
  return {
    async getIdentityProfile(session) {
      const { identity, dataKey } = await signInIdentity(session);
      return { identityId: identity.id, profile: openIdentityProfile(dataKey, identity) };
    },
    async updateIdentityProfile(session, raw) {
      const profile = checkCustomAttributes(raw, "profile");
      const { identity, dataKey } = await signInIdentity(session);
      const sealed = sealIdentityProfile(dataKey, identity.id, profile);
      if (!(await accounts.setIdentityProfile({ accountId: session.accountId, identityId: identity.id, profileSealed: sealed, at: now() })))
        throw new DomainError("not_found", "IDENTITY_NOT_FOUND", "the identity this session signed in with is gone");
      return { identityId: identity.id, profile };
    },
    sendSignInCode: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.send_sign_in_code", rateLimited: "session.rate_limited" }, () => flows.sendSignInCode(input)),
    signInWithPhoneCode: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.sign_in_phone", rateLimited: "session.rate_limited" }, () =>
        flows.signInWithPhoneCode(input),
      ),
    signInAsGuest: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.sign_in_guest", rateLimited: "session.rate_limited" }, () => flows.signInAsGuest(input)),
    addPhone: (input) =>
      security.run(
        input.principal.tenantId,
        input.meta,
        { action: "identity.add_phone", rateLimited: "identity.rate_limited" },
        () => flows.addPhone(input),
        actorOf(input.principal),
      ),
    verifyPhone: (input) =>
      security.run(
        input.principal.tenantId,
        input.meta,
        { action: "identity.verify_phone", rateLimited: "identity.rate_limited" },
        () => flows.verifyPhone(input),
        actorOf(input.principal),
      ),
  };
}
