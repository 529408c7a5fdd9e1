// Social sign-in: the web flow (StartSocialSignIn → the provider → Complete-
// SocialSignIn) and the native one (SignIn with an ID token), and the account
// rules both share. An external identity is (issuer, subject), stored as an
// OIDC identity: blind-indexed for the lookup, sealed under the account's key.
// It joins an account only by that pair: the first sign-in creates the account
// (unless the tenant is invite-only), a sign-in started signed in links it to
// that account, and an email address never joins anything (account takeover):
// a verified provider email that belongs to an account here is refused with
// SOCIAL_LINK_REQUIRED, so the person signs in there first and links.
// Identities follow docs/architecture.md ("Identities"): the OIDC identity's
// value is the subject, its issuer in clear, what the provider said in its
// sealed profile; a verified provider address becomes the new account's
// primary email as an email identity of its own.
import { createHash } from "node:crypto";
import { decryptString, encryptString, hashSecret, type Keyring } from "../crypto/keyring.ts";
import { EMAIL_INDEX, newAccount, newIdentity, OIDC_INDEX, oidcLookupValue, openAccount, sealIdentityProfile, sealProfile } from "./accounts.ts";
import type { AuditLog } from "./audit-log.ts";
import { createSecurityEvents, type SecurityAttempt, type SecuritySubject } from "./audit.ts";
import { DomainError, invalidArgument, unauthenticated } from "./errors.ts";
import { accountEvent, EventType, identityKindName } from "./events.ts";
import type { BlockingHooks } from "./hooks.ts";
import { assertCanSignIn, type SecondFactorNeeded, stateAfterVerification } from "./identity.ts";
import type { SecondFactors } from "./second-factors.ts";
import type { Limits } from "./limits.ts";
import { oneTimeTokenHash, randomToken } from "./one-time-tokens.ts";
import { type AccountReader, type AccountWriter, DuplicateIdentityError, type StoredAccount, type StoredIdentity } from "./ports/accounts.ts";
import type { ExternalIdentity, Federation, FederationProvider } from "./ports/federation.ts";
import type { Leases } from "./ports/leases.ts";
import type { Random } from "./ports/random.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { IssuedSession, RequestMeta, Sessions } from "./sessions.ts";
import { type OpenedSocialProvider, SocialProviderKind, type SocialProviders } from "./social-providers.ts";
import type { Tenants } from "./tenants.ts";
import { AccountState, AssuranceLevel, AuthMethod, IdentityKind, Role, type Account, type Profile, type Tenant } from "./types.ts";
import { normalizeEmail } from "./validation.ts";
import { trialAtCreation } from "./subscriptions.ts";

/** How long a started sign-in waits for its completion. */
export const SOCIAL_STATE_TTL_MS = 10 * 60_000;
const FIELD_MAX = 4096;
/** The clock tolerance of ID token checks (src/federation/oidc.ts): a token is remembered this much past its expiry. */
const CLOCK_TOLERANCE_MS = 30_000;
/** Longest a used ID token is remembered (a token living longer is refused as used for this long). */
const ID_TOKEN_MEMORY_MAX_MS = 24 * 3_600_000;

/** What an OIDC identity's sealed profile holds: what the provider said (its value is the subject, its issuer in clear). */
export interface ExternalIdentityProfile {
  providerId: string;
  email: string;
  emailVerified: boolean;
  /** Apple's private-relay address. */
  privateRelayEmail: boolean;
  /** The name the provider gave (Apple: only on the first sign-in). */
  name: string;
}

export interface SocialSignInResult extends IssuedSession {
  account: Account;
  created: boolean;
  linked: boolean;
}

/** An account with a second factor: no session yet, a challenge to answer (SessionService/CompleteSecondFactor). */
export interface SocialSecondFactorNeeded extends SecondFactorNeeded {
  created: false;
  linked: boolean;
}

export type SocialSignInOutcome = SocialSignInResult | SocialSecondFactorNeeded;

export interface SocialSignIn {
  /** `linkAccountId`: the signed-in caller's account, when the sign-in should link to it. */
  start(input: { tenantId: string; providerId: string; redirectUri: string; linkAccountId?: string }): Promise<{ authorizationUrl: string; state: string }>;
  complete(input: { tenantId: string; state: string; code: string; iss: string; user: string; meta: RequestMeta }): Promise<SocialSignInOutcome>;
  signInWithIdToken(input: { tenantId: string; providerId: string; idToken: string; nonce: string; meta: RequestMeta }): Promise<SocialSignInOutcome>;
}

/** The name Apple's form_post `user` field carries on a first sign-in ("" when none). */
export function appleUserName(raw: string): string {
  if (raw === "") return "";
  if (raw.length > FIELD_MAX) throw invalidArgument("user", `must be at most ${FIELD_MAX} characters`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidArgument("user", "must be the JSON Apple posted");
  }
  const name = (parsed as { name?: { firstName?: unknown; lastName?: unknown } } | null)?.name;
  const part = (v: unknown) => (typeof v === "string" ? v.trim() : "");
  return [part(name?.firstName), part(name?.lastName)]
    .filter((p) => p !== "")
    .join(" ")
    .replace(/[\p{Cc}\p{Cf}]/gu, "")
    .slice(0, 200);
}

function federationProvider(p: OpenedSocialProvider): FederationProvider {
  return {
    id: p.id,
    kind: p.kind,
    issuer: p.issuer,
    clientId: p.clientId,
    clientSecret: p.clientSecret,
    ...(p.kind === SocialProviderKind.APPLE ? { apple: { teamId: p.appleTeamId, keyId: p.appleKeyId, privateKey: p.applePrivateKey } } : {}),
    updatedAt: p.updatedAt,
  };
}

/**
 * The key that seals a started sign-in's secrets (PKCE verifier, nonce, redirect URI) in
 * the token store: derived from the raw state, which only the client holds, so the stored
 * record (kept under the state's hash) is useless to whoever reads the store.
 */
const stateKey = (state: string) => createHash("sha256").update(`social-state:${state}`).digest();
const STATE_CONTEXT = "social_state";

const stateRefused = () => unauthenticated("SOCIAL_STATE_INVALID", "the sign-in state is unknown, used or expired; start again");

function bounded(field: string, value: string): string {
  if (value.length === 0) throw invalidArgument(field, "is required");
  if (value.length > FIELD_MAX) throw invalidArgument(field, `must be at most ${FIELD_MAX} characters`);
  return value;
}

export function createSocialSignIn(deps: {
  providers: Pick<SocialProviders, "open">;
  federation: Federation;
  tokens: TokenStore;
  accounts: AccountReader & Pick<AccountWriter, "createAccount" | "addIdentity">;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  sessions: Pick<Sessions, "issue">;
  /** After the ID token: the second-factor challenge when the account has a factor (src/domain/second-factors.ts). */
  secondFactors: Pick<SecondFactors, "challengeFor">;
  limits: Limits;
  /** SET NX with a TTL: remembers used ID tokens across instances (./ports/leases.ts). */
  leases: Leases;
  audit: AuditLog;
  now: () => number;
  random: Random;
  /** The tenant's blocking hooks (before_sign_up, for a first social sign-in); none: no hook is asked. */
  hooks?: Pick<BlockingHooks, "check">;
}): SocialSignIn {
  const { keyring, now, random, accounts } = deps;

  async function provider(tenantId: string, field: string, id: string): Promise<OpenedSocialProvider> {
    if (id === "") throw invalidArgument(field, "is required");
    return deps.providers.open(tenantId, id);
  }

  /** Signs the external identity in: its account, a linked or a new one, by the rules above. */
  async function settle(
    tenant: Tenant,
    source: OpenedSocialProvider,
    external: ExternalIdentity,
    extras: { name: string; linkAccountId: string; meta: RequestMeta },
    subject: SecuritySubject,
  ): Promise<SocialSignInOutcome> {
    const lookupHash = keyring.blindIndex(OIDC_INDEX, oidcLookupValue(external.issuer, external.subject));
    const at = now();
    const name = extras.name || external.name;
    /** The OIDC identity row for `account`: value the subject, the issuer in clear, what the provider said sealed in its profile. */
    const identityFor = (account: { id: string; tenantId: string }, dataKey: Buffer): StoredIdentity => {
      const identity = newIdentity(
        dataKey,
        account,
        { kind: IdentityKind.OIDC, value: external.subject, lookupHash, verifiedAt: at, issuer: external.issuer },
        at,
        random,
      );
      const profile: ExternalIdentityProfile = {
        providerId: source.id,
        email: external.email,
        emailVerified: external.emailVerified,
        privateRelayEmail: external.privateRelayEmail,
        name,
      };
      return { ...identity, profileSealed: sealIdentityProfile(dataKey, identity.id, { ...profile }) };
    };
    const taken = () => new DomainError("failed_precondition", "SOCIAL_IDENTITY_TAKEN", "this provider account is linked to another account");
    const found = await accounts.findByIdentity(tenant.id, IdentityKind.OIDC, lookupHash);

    if (extras.linkAccountId !== "") {
      if (found) {
        if (found.account.id !== extras.linkAccountId) throw taken();
        subject.accountId = found.account.id;
        return issue(tenant, found.account, found.wrappedKey, extras.meta, found.identity.id, false, true);
      }
      const target = await accounts.getAccount(tenant.id, extras.linkAccountId);
      if (!target) throw stateRefused();
      subject.accountId = target.account.id;
      const dataKey = keyring.unwrapDataKey(target.account.id, target.wrappedKey);
      const linkedIdentity = identityFor(target.account, dataKey);
      try {
        const events = [
          accountEvent(
            EventType.IDENTITY_ADDED,
            target.account,
            at,
            { identity_id: linkedIdentity.id, identity_kind: identityKindName(IdentityKind.OIDC) },
            random,
          ),
        ];
        const added = await accounts.addIdentity({ tenantId: tenant.id, accountId: target.account.id, identity: linkedIdentity, at, events });
        if (!added) throw stateRefused();
      } catch (error) {
        throw error instanceof DuplicateIdentityError ? taken() : error;
      }
      subject.outcome = "LINKED";
      return issue(tenant, target.account, target.wrappedKey, extras.meta, linkedIdentity.id, false, true);
    }

    if (found) {
      subject.accountId = found.account.id;
      return issue(tenant, found.account, found.wrappedKey, extras.meta, found.identity.id, false, false);
    }

    // Never joined by email: a verified address an account here holds is refused, not linked.
    let email: { value: string; lookupHash: string } | undefined;
    if (external.email !== "" && external.emailVerified) {
      try {
        const value = normalizeEmail("email", external.email);
        email = { value, lookupHash: keyring.blindIndex(EMAIL_INDEX, value) };
      } catch {
        email = undefined; // an address we could not hold is no one's here
      }
      if (email && (await accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, email.lookupHash))) {
        subject.outcome = "LINK_REQUIRED";
        throw new DomainError(
          "failed_precondition",
          "SOCIAL_LINK_REQUIRED",
          "an account with this email address exists: sign in to it, then link this provider from there",
        );
      }
    }
    if (tenant.settings.inviteOnly) throw new DomainError("failed_precondition", "SIGN_UP_CLOSED", "sign-up is by invitation only");
    await deps.hooks?.check("before_sign_up", { tenantId: tenant.id, identityKind: IdentityKind.OIDC, meta: extras.meta });

    const { dataKey, ...rows } = newAccount(keyring, {
      tenantId: tenant.id,
      identity: { kind: IdentityKind.OIDC, value: external.subject, lookupHash, verifiedAt: at, issuer: external.issuer },
      passwordHash: null,
      role: Role.USER,
      state: stateAfterVerification(tenant.settings, AccountState.PENDING_VERIFICATION),
      locale: tenant.settings.defaultLocale,
      at,
      random,
    });
    const profile: Profile = { email: "", displayName: name, pronouns: "", customAttributes: {}, pushTokens: [] };
    let account: StoredAccount = {
      ...rows.account,
      profileSealed: sealProfile(dataKey, rows.account.id, profile),
      // The tenant's trial rule for a new account (src/domain/subscriptions.ts): the provider's sign-in proves the identity.
      ...trialAtCreation(tenant.settings, rows.identity, at),
    };
    const identity = identityFor(account, dataKey);
    try {
      const events = [
        accountEvent(EventType.ACCOUNT_CREATED, account, at, { identity_id: identity.id, identity_kind: identityKindName(IdentityKind.OIDC) }, random),
      ];
      await accounts.createAccount({ account, wrappedKey: rows.wrappedKey, identity, messages: [], events });
    } catch (error) {
      if (!(error instanceof DuplicateIdentityError)) throw error;
      // A concurrent first sign-in of the same person created it: sign in there.
      const winner = await accounts.findByIdentity(tenant.id, IdentityKind.OIDC, lookupHash);
      if (!winner) throw error;
      subject.accountId = winner.account.id;
      return issue(tenant, winner.account, winner.wrappedKey, extras.meta, winner.identity.id, false, false);
    }
    subject.accountId = account.id;
    subject.outcome = "ACCOUNT_CREATED";
    if (email) {
      // The provider's verified address (Apple's private relay included) becomes the account's
      // primary email: an email identity of its own, as an address added later would be.
      const sealed = sealProfile(dataKey, account.id, { ...profile, email: email.value });
      const emailIdentity = newIdentity(
        dataKey,
        account,
        { kind: IdentityKind.EMAIL, value: email.value, lookupHash: email.lookupHash, verifiedAt: at },
        at,
        random,
      );
      try {
        const added = await accounts.addIdentity({
          tenantId: tenant.id,
          accountId: account.id,
          identity: emailIdentity,
          profile: { expectedSealed: account.profileSealed, sealed, emailVerified: true },
          at,
          events: [accountEvent(EventType.IDENTITY_ADDED, account, at, { identity_id: emailIdentity.id, identity_kind: "email" }, random)],
        });
        if (added) account = { ...account, profileSealed: sealed, emailVerified: true };
      } catch (error) {
        // Taken since the check above: the account goes on without a primary email.
        if (!(error instanceof DuplicateIdentityError)) throw error;
      }
    }
    return issue(tenant, account, rows.wrappedKey, extras.meta, identity.id, true, false);
  }

  /** A session proven by the OIDC identity `identityId`. */
  async function issue(tenant: Tenant, stored: StoredAccount, wrappedKey: string, meta: RequestMeta, identityId: string, created: boolean, linked: boolean) {
    const { account, dataKey } = openAccount(keyring, stored, wrappedKey);
    assertCanSignIn(account);
    // An account with a second factor answers SignIn's challenge, whatever proved the first factor.
    const secondFactor = await deps.secondFactors.challengeFor(tenant, account, identityId, stored.passwordHash ?? "", AuthMethod.OIDC);
    if (secondFactor) return { account, secondFactor, created: false as const, linked };
    const issued = await deps.sessions.issue(account, tenant.settings, meta, AssuranceLevel.AAL1, dataKey, [{ method: AuthMethod.OIDC, identityId }]);
    return { ...issued, account, created, linked };
  }

  const flows = {
    async complete(input: Parameters<SocialSignIn["complete"]>[0]): Promise<SecurityAttempt<SocialSignInOutcome>> {
      const subject: SecuritySubject = {};
      try {
        const state = bounded("state", input.state);
        const code = bounded("code", input.code);
        if (input.iss.length > FIELD_MAX) throw invalidArgument("iss", `must be at most ${FIELD_MAX} characters`);
        const name = appleUserName(input.user);
        const tenant = await deps.tenants.get(input.tenantId);
        await deps.limits.consume("code_ip", tenant, input.meta.ip);
        // Single-use: taken (deleted) before anything else, whatever follows.
        const taken = await deps.tokens.take(oneTimeTokenHash(state));
        if (taken?.purpose !== "social_state" || taken.tenantId !== tenant.id || taken.expiresAt <= now() || !taken.data) throw stateRefused();
        let opened: Record<string, string>;
        try {
          opened = JSON.parse(decryptString(stateKey(state), taken.data.sealed ?? "", STATE_CONTEXT)) as Record<string, string>;
        } catch {
          throw stateRefused();
        }
        const { providerId, redirectUri, codeVerifier, nonce } = opened;
        const source = await deps.providers.open(tenant.id, providerId!).catch((error: unknown) => {
          throw error instanceof DomainError && error.reason === "SOCIAL_PROVIDER_NOT_FOUND" ? stateRefused() : error;
        });
        if (input.iss !== "" && input.iss !== source.issuer) throw unauthenticated("SOCIAL_STATE_INVALID", "the response comes from another issuer");
        const external = await deps.federation.redeemCode(federationProvider(source), {
          code,
          redirectUri: redirectUri!,
          codeVerifier: codeVerifier!,
          nonce: nonce!,
        });
        const value = await settle(tenant, source, external, { name, linkAccountId: taken.accountId, meta: input.meta }, subject);
        return { ok: true, value, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },

    async signInWithIdToken(input: Parameters<SocialSignIn["signInWithIdToken"]>[0]): Promise<SecurityAttempt<SocialSignInOutcome>> {
      const subject: SecuritySubject = {};
      try {
        const idToken = bounded("id_token.id_token", input.idToken);
        const nonce = bounded("id_token.nonce", input.nonce);
        const tenant = await deps.tenants.get(input.tenantId);
        await deps.limits.consume("code_ip", tenant, input.meta.ip);
        const source = await provider(tenant.id, "id_token.provider_id", input.providerId);
        // Apple's native flow puts the SHA-256 (hex) of the app's nonce in the token.
        const nonces = [nonce, createHash("sha256").update(nonce).digest("hex")];
        const external = await deps.federation.verifyIdToken(federationProvider(source), { idToken, nonces });
        // Each ID token signs in once: a copy of one (a log, a proxy, a stolen device backup) replays nothing.
        // Remembered until it expires (plus the clock tolerance), through a lease nobody releases.
        const remember = Math.min(Math.max(external.expiresAt + CLOCK_TOLERANCE_MS - now(), 1000), ID_TOKEN_MEMORY_MAX_MS);
        if (!(await deps.leases.acquire(`social-id-token:${hashSecret(idToken)}`, remember)))
          throw unauthenticated("SOCIAL_TOKEN_INVALID", "this ID token was used already");
        const value = await settle(tenant, source, external, { name: "", linkAccountId: "", meta: input.meta }, subject);
        return { ok: true, value, subject };
      } catch (error) {
        return { ok: false, error, subject };
      }
    },
  };

  const security = createSecurityEvents(deps.audit, now);
  return {
    async start({ tenantId, providerId, redirectUri, linkAccountId }) {
      const source = await provider(tenantId, "provider_id", providerId);
      if (!source.redirectUris.includes(redirectUri)) throw invalidArgument("redirect_uri", "is not one of the provider's redirect URIs");
      const state = randomToken(random, 32);
      const nonce = randomToken(random, 32);
      const codeVerifier = randomToken(random, 32); // 43 characters of base64url: RFC 7636's range
      const codeChallenge = createHash("sha256").update(codeVerifier).digest("base64url");
      const authorizationUrl = await deps.federation.authorizationUrl(federationProvider(source), {
        redirectUri,
        scopes: source.scopes,
        state,
        nonce,
        codeChallenge,
      });
      await deps.tokens.put(
        oneTimeTokenHash(state),
        {
          purpose: "social_state",
          tenantId,
          accountId: linkAccountId ?? "",
          identityId: "",
          expiresAt: now() + SOCIAL_STATE_TTL_MS,
          data: { sealed: encryptString(stateKey(state), JSON.stringify({ providerId: source.id, redirectUri, codeVerifier, nonce }), STATE_CONTEXT) },
        },
        SOCIAL_STATE_TTL_MS,
      );
      return { authorizationUrl, state };
    },
    complete: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.social_sign_in", rateLimited: "session.rate_limited" }, () => flows.complete(input)),
    signInWithIdToken: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.social_sign_in", rateLimited: "session.rate_limited" }, () => flows.signInWithIdToken(input)),
  };
}
