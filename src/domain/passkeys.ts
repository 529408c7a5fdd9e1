// Passkeys (WebAuthn, through @simplewebauthn/server): registered by a
// signed-in person as a second factor (kind PASSKEY in the second factors'
// store), they sign in without a password and answer a second-factor challenge.
//
// The relying party of a tenant is its passkey_rp_id and passkey_origins
// settings, else the host and origin of its link_base_url (the pages that run
// the ceremonies), else of PUBLIC_URL.
// Every ceremony's challenge is single use: kept by its hash in the ephemeral
// token store (Redis or in-process) and taken (atomically) by the answer.
// At rest a passkey's credential id, public key, transports and backup flags
// are sealed under the account's data key (erased with it); its sign counter is
// the factor's last used step, moved forward by compare-and-set, so a cloned
// authenticator replaying an old counter is refused. userHandle is the account id.
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { decryptString, encryptString, type Keyring } from "../crypto/keyring.ts";
import { openAccount } from "./accounts.ts";
import type { AuditLog } from "./audit-log.ts";
import { createSecurityEvents, type SecuritySubject } from "./audit.ts";
import { DomainError, invalidArgument, unauthenticated } from "./errors.ts";
import { accountEvent, EventType } from "./events.ts";
import { assertCanSignIn, type SignInResult } from "./identity.ts";
import { newId } from "./ids.ts";
import type { Limits } from "./limits.ts";
import { oneTimeTokenHash } from "./one-time-tokens.ts";
import { queueSecondFactorNotice, recoveryCodeSet, type SecondFactorPasskeys } from "./second-factors.ts";
import { MessageKind } from "./messages.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { AccountReader } from "./ports/accounts.ts";
import type { Random } from "./ports/random.ts";
import type { SecondFactorStore, StoredSecondFactor } from "./ports/second-factors.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { SessionPrincipal } from "./principal.ts";
import type { RequestMeta, Sessions } from "./sessions.ts";
import type { Tenants } from "./tenants.ts";
import { AssuranceLevel, AuthMethod, SecondFactorKind, type Tenant } from "./types.ts";

export const PASSKEY_CEREMONY_TTL_MS = 5 * 60_000;
const MAX_RESPONSE_CHARS = 64 * 1024;

/** What is sealed in a passkey factor's secret. */
interface SealedPasskey {
  credentialId: string;
  publicKey: string;
  transports: string[];
  backupEligible: boolean;
  backedUp: boolean;
  aaguid: string;
}

export interface RelyingParty {
  id: string;
  origins: string[];
  name: string;
}

/** The tenant's relying party: its passkey settings, else the host and origin of its link_base_url, else of PUBLIC_URL. */
export function relyingParty(tenant: Tenant, publicUrl: string): RelyingParty {
  const url = new URL(tenant.settings.linkBaseUrl || publicUrl);
  const origins = tenant.settings.passkeyOrigins ?? [];
  return { id: tenant.settings.passkeyRpId || url.hostname, origins: origins.length > 0 ? [...origins] : [url.origin], name: tenant.name || tenant.id };
}

const secretContext = (factorId: string) => `second-factor:${factorId}`;
const invalidPasskey = () => unauthenticated("INVALID_SECOND_FACTOR", "the passkey answer is invalid, for another challenge, or already used");
const invalidCredentials = () => unauthenticated("INVALID_CREDENTIALS", "the passkey is not known here or its answer is invalid");

/** The challenge a WebAuthn answer signed (from its clientDataJSON); undefined when the answer is not one. */
function challengeOf(response: { response?: { clientDataJSON?: unknown } }): string | undefined {
  const data = response.response?.clientDataJSON;
  if (typeof data !== "string") return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(data, "base64url").toString("utf8")) as { challenge?: unknown };
    return typeof parsed.challenge === "string" && parsed.challenge.length <= 200 ? parsed.challenge : undefined;
  } catch {
    return undefined;
  }
}

function parseResponse<T extends { id: string; response: object }>(field: string, json: string): T {
  if (json === "") throw invalidArgument(field, "is required");
  if (json.length > MAX_RESPONSE_CHARS) throw invalidArgument(field, "is too long");
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw invalidArgument(field, "must be JSON (the credential's toJSON())");
  }
  const candidate = parsed as T;
  if (
    typeof parsed !== "object" ||
    parsed === null ||
    typeof candidate.id !== "string" ||
    typeof candidate.response !== "object" ||
    candidate.response === null
  )
    throw invalidArgument(field, "is not a WebAuthn credential answer");
  return candidate;
}

export interface PasskeyDeps {
  store: SecondFactorStore;
  accounts: Pick<AccountReader, "getAccount">;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  tokens: TokenStore;
  sessions: Pick<Sessions, "issue">;
  limits: Limits;
  now: () => number;
  random: Random;
  publicUrl: string;
  audit: AuditLog;
  /** The second-factor-added notice goes through the outbox. */
  outbox: OutboxWriter;
  onMessageQueued: () => void;
}

export interface Passkeys extends SecondFactorPasskeys {
  startRegistration(principal: SessionPrincipal): Promise<string>;
  finishRegistration(
    principal: SessionPrincipal,
    responseJson: string,
  ): Promise<{ factor: { id: string; kind: SecondFactorKind; createdAt: number; lastUsedAt: number | null }; recoveryCodes: string[] }>;
  startSignIn(tenantId: string, meta: RequestMeta): Promise<string>;
  signIn(input: { tenantId: string; responseJson: string; meta: RequestMeta }): Promise<SignInResult>;
}

export function createPasskeys(deps: PasskeyDeps): Passkeys {
  const { store, keyring, now, random } = deps;
  const opened = (factor: StoredSecondFactor, dataKey: Buffer) =>
    JSON.parse(decryptString(dataKey, factor.secretSealed, secretContext(factor.id))) as SealedPasskey;
  const passkeysOf = (factors: StoredSecondFactor[], dataKey: Buffer) =>
    factors.filter((f) => f.kind === SecondFactorKind.PASSKEY && f.confirmedAt !== null).map((factor) => ({ factor, key: opened(factor, dataKey) }));
  const newChallenge = () => Buffer.from(random.bytes(32)).toString("base64url");

  async function openedAccount(tenantId: string, accountId: string) {
    const found = await deps.accounts.getAccount(tenantId, accountId);
    if (!found) return undefined;
    return openAccount(keyring, found.account, found.wrappedKey);
  }

  /** Verifies an assertion by one of `passkeys`, moves its counter forward; false when it fails. */
  async function verifyAssertion(
    accountId: string,
    rp: RelyingParty,
    passkeys: Array<{ factor: StoredSecondFactor; key: SealedPasskey }>,
    response: AuthenticationResponseJSON,
    expectedChallenge: string,
  ): Promise<boolean> {
    const match = passkeys.find((p) => p.key.credentialId === response.id);
    if (!match) return false;
    const verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserVerification: true,
      credential: { id: match.key.credentialId, publicKey: Buffer.from(match.key.publicKey, "base64url"), counter: match.factor.lastUsedStep ?? 0 },
    }).catch(() => undefined);
    if (!verified?.verified) return false;
    const counter = verified.authenticationInfo.newCounter;
    // An authenticator without a counter always says 0; one with a counter must move it forward (a clone would not).
    if (counter === 0 && (match.factor.lastUsedStep ?? 0) === 0) return true;
    return store.useStep(accountId, match.factor.id, counter, now());
  }

  async function passwordlessSignIn(input: { tenantId: string; responseJson: string; meta: RequestMeta }, subject: SecuritySubject): Promise<SignInResult> {
    const response = parseResponse<AuthenticationResponseJSON>("passkey.response_json", input.responseJson);
    const challenge = challengeOf(response);
    if (!challenge) throw invalidArgument("passkey.response_json", "is not a WebAuthn answer");
    const tenant = await deps.tenants.get(input.tenantId);
    const bySource = await deps.limits.consume("code_ip", tenant, input.meta.ip);
    const pending = await deps.tokens.take(oneTimeTokenHash(challenge));
    if (pending?.purpose !== "passkey_sign_in" || pending.tenantId !== tenant.id || pending.expiresAt <= now()) throw invalidCredentials();
    const handle = typeof response.response.userHandle === "string" ? Buffer.from(response.response.userHandle, "base64url").toString("utf8") : "";
    if (handle === "" || handle.length > 64) throw invalidCredentials();
    const opened = await openedAccount(tenant.id, handle);
    if (!opened) throw invalidCredentials();
    const { account, dataKey } = opened;
    subject.accountId = account.id;
    const passkeys = passkeysOf(await store.list(account.id), dataKey);
    if (!(await verifyAssertion(account.id, relyingParty(tenant, deps.publicUrl), passkeys, response, challenge))) throw invalidCredentials();
    assertCanSignIn(account);
    await bySource.refund();
    // A passkey with user verification is something owned and something known or been: two factors.
    const issued = await deps.sessions.issue(account, tenant.settings, input.meta, AssuranceLevel.AAL2, dataKey, [
      { method: AuthMethod.PASSKEY, identityId: "", at: now() },
    ]);
    return { ...issued, account };
  }

  const security = createSecurityEvents(deps.audit, now);

  return {
    async startRegistration(principal) {
      const tenant = await deps.tenants.get(principal.tenantId);
      await deps.limits.consume("code_account", tenant, `passkey_registration:${principal.accountId}`);
      const opened = await openedAccount(principal.tenantId, principal.accountId);
      if (!opened) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
      const { account, dataKey } = opened;
      const rp = relyingParty(tenant, deps.publicUrl);
      const existing = passkeysOf(await store.list(account.id), dataKey);
      const challenge = newChallenge();
      const options = await generateRegistrationOptions({
        rpName: rp.name,
        rpID: rp.id,
        userName: account.profile.email || account.profile.displayName || account.id,
        userID: Buffer.from(account.id, "utf8"),
        challenge: Buffer.from(challenge, "base64url"),
        attestationType: "none",
        excludeCredentials: existing.map((p) => ({ id: p.key.credentialId, transports: p.key.transports })),
        authenticatorSelection: { residentKey: "required", userVerification: "required" },
        timeout: PASSKEY_CEREMONY_TTL_MS,
      });
      await deps.tokens.put(
        oneTimeTokenHash(options.challenge),
        { purpose: "passkey_registration", tenantId: tenant.id, accountId: account.id, identityId: "", expiresAt: now() + PASSKEY_CEREMONY_TTL_MS },
        PASSKEY_CEREMONY_TTL_MS,
      );
      return JSON.stringify(options);
    },

    async finishRegistration(principal, responseJson) {
      const response = parseResponse<RegistrationResponseJSON>("response_json", responseJson);
      const challenge = challengeOf(response);
      if (!challenge) throw invalidArgument("response_json", "is not a WebAuthn registration answer");
      const tenant = await deps.tenants.get(principal.tenantId);
      await deps.limits.consume("code_account", tenant, `passkey_registration:${principal.accountId}`);
      const pending = await deps.tokens.take(oneTimeTokenHash(challenge));
      if (
        pending?.purpose !== "passkey_registration" ||
        pending.accountId !== principal.accountId ||
        pending.tenantId !== tenant.id ||
        pending.expiresAt <= now()
      )
        throw invalidPasskey();
      const rp = relyingParty(tenant, deps.publicUrl);
      const verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.id,
        requireUserVerification: true,
      }).catch(() => undefined);
      if (!verified?.verified) throw invalidPasskey();
      const info = verified.registrationInfo;
      const opened = await openedAccount(principal.tenantId, principal.accountId);
      if (!opened) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
      const factors = await store.list(principal.accountId);
      if (passkeysOf(factors, opened.dataKey).some((p) => p.key.credentialId === info.credential.id))
        throw new DomainError("failed_precondition", "PASSKEY_ALREADY_REGISTERED", "this passkey is registered already");
      const at = now();
      const id = newId(at, random);
      const sealed: SealedPasskey = {
        credentialId: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey).toString("base64url"),
        transports: info.credential.transports ?? [],
        backupEligible: info.credentialDeviceType === "multiDevice",
        backedUp: info.credentialBackedUp,
        aaguid: info.aaguid,
      };
      await store.putPending({
        id,
        tenantId: tenant.id,
        accountId: principal.accountId,
        kind: SecondFactorKind.PASSKEY,
        secretSealed: encryptString(opened.dataKey, JSON.stringify(sealed), secretContext(id)),
        createdAt: at,
        confirmedAt: null,
        lastUsedStep: null,
        lastUsedAt: null,
      });
      // As a TOTP enrollment does: a new set of recovery codes, shown once, replacing the old set.
      const { codes, hashes } = recoveryCodeSet(keyring, random, principal.accountId);
      const enrolled = accountEvent(
        EventType.SECOND_FACTOR_ENROLLED,
        { tenantId: tenant.id, id: principal.accountId },
        at,
        { factor_id: id, kind: "passkey" },
        random,
      );
      if (
        !(await store.confirm({
          accountId: principal.accountId,
          factorId: id,
          at,
          step: info.credential.counter,
          recoveryCodeHashes: hashes,
          events: [enrolled],
        }))
      )
        throw invalidPasskey();
      await queueSecondFactorNotice(deps, opened.dataKey, opened.account, MessageKind.SECOND_FACTOR_ADDED);
      return { factor: { id, kind: SecondFactorKind.PASSKEY, createdAt: at, lastUsedAt: at }, recoveryCodes: codes };
    },

    async startSignIn(tenantId, meta) {
      const tenant = await deps.tenants.get(tenantId);
      await deps.limits.consume("code_ip", tenant, meta.ip);
      const rp = relyingParty(tenant, deps.publicUrl);
      const options = await generateAuthenticationOptions({
        rpID: rp.id,
        challenge: Buffer.from(newChallenge(), "base64url"),
        userVerification: "required",
        timeout: PASSKEY_CEREMONY_TTL_MS,
      });
      await deps.tokens.put(
        oneTimeTokenHash(options.challenge),
        { purpose: "passkey_sign_in", tenantId: tenant.id, accountId: "", identityId: "", expiresAt: now() + PASSKEY_CEREMONY_TTL_MS },
        PASSKEY_CEREMONY_TTL_MS,
      );
      return JSON.stringify(options);
    },

    // Recorded as every sign-in is (session.sign_in_passkey): success or the refusal's reason, about the account once known.
    signIn: (input) =>
      security.run(input.tenantId, input.meta, { action: "session.sign_in_passkey", rateLimited: "session.rate_limited" }, async () => {
        const subject: SecuritySubject = {};
        try {
          return { ok: true, value: await passwordlessSignIn(input, subject), subject };
        } catch (error) {
          return { ok: false, error, subject };
        }
      }),

    async challengeOptions(tenant, factors, dataKey) {
      const passkeys = passkeysOf(factors, dataKey);
      if (passkeys.length === 0) return undefined;
      const options = await generateAuthenticationOptions({
        rpID: relyingParty(tenant, deps.publicUrl).id,
        challenge: Buffer.from(newChallenge(), "base64url"),
        allowCredentials: passkeys.map((p) => ({ id: p.key.credentialId, transports: p.key.transports })),
        userVerification: "required",
        timeout: PASSKEY_CEREMONY_TTL_MS,
      });
      return { optionsJson: JSON.stringify(options), challenge: options.challenge };
    },

    async verifySecondFactor(tenant, factors, dataKey, responseJson, expectedChallenge) {
      const response = parseResponse<AuthenticationResponseJSON>("passkey_response_json", responseJson);
      if (expectedChallenge === "" || challengeOf(response) !== expectedChallenge) throw invalidPasskey();
      const accountId = factors[0]?.accountId ?? "";
      if (!(await verifyAssertion(accountId, relyingParty(tenant, deps.publicUrl), passkeysOf(factors, dataKey), response, expectedChallenge)))
        throw invalidPasskey();
    },
  };
}
