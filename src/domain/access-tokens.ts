// Signed access tokens for services that cannot keep a revocation stream: a
// short-lived JWT (EdDSA, Ed25519) a service verifies with the public keys
// published at /.well-known/jwks.json, with no call to us. Keys rotate with
// overlap: a new key is published `publishLeadMs` before it signs, and a retired
// key stays published until every token it signed has expired. Private halves
// are sealed under the KEK; a key sealed under a KEK that is no longer the active
// one is rotated away (so a KEK rotation needs nothing more). Guarantees and
// their limits (a token outlives its session's revocation by at most its
// lifetime): docs/clients.md#signed-access-tokens.
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import type { Keyring } from "../crypto/keyring.ts";
import { roleName } from "./authorization.ts";
import type { SigningKeyStore, StoredSigningKey } from "./ports/signing-keys.ts";
import type { PlanAnswer } from "./subscriptions.ts";
import { SUBSCRIPTION_STATUS_NAMES, type SessionRecord } from "./types.ts";

export const ACCESS_TOKEN_ALGORITHM = "EdDSA";
/** Verifiers' clock skew the overlap allows for. */
const SKEW_MS = 60_000;
/** How long this instance trusts its copy of the key list (a key published elsewhere is seen within it). */
const KEYS_CACHE_MS = 5_000;

export interface AccessTokenOptions {
  /** The `iss` claim (the service's public URL). */
  issuer: string;
  /** Lifetime of a token. */
  ttlMs: number;
  /** Age at which the signing key is replaced. */
  rotationMs: number;
  /** How long a new key is published before it signs (longer than any JWKS cache of ours: KEYS_CACHE_MS). */
  publishLeadMs: number;
}

export interface IssuedAccessToken {
  token: string;
  expiresAt: number;
  kid: string;
}

export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  kid: string;
  alg: string;
  use: string;
}

export interface AccessTokens {
  /** A token for the live session `session` (the caller checked it), with the account's plan as ValidateSession answers it. */
  issue(session: SessionRecord, plan: PlanAnswer): Promise<IssuedAccessToken>;
  /** The public keys a verifier needs: the signing one, the next one, and retired ones whose tokens may still be live. */
  jwks(): Promise<{ keys: PublicJwk[] }>;
  /** Starts a new signing key now (published at once, signing after publishLeadMs); returns its kid. */
  rotate(): Promise<string>;
}

export function createAccessTokens(deps: {
  store: SigningKeyStore;
  keyring: Pick<Keyring, "sealSecret" | "openSecret" | "activeKekId">;
  now: () => number;
  options: AccessTokenOptions;
}): AccessTokens {
  const { options } = deps;
  let cached: { keys: StoredSigningKey[]; readAt: number } | undefined;
  const privateKeys = new Map<string, KeyObject>();
  let rotating: Promise<string> | undefined;

  async function keys(fresh = false): Promise<StoredSigningKey[]> {
    const at = deps.now();
    if (!fresh && cached && at - cached.readAt < KEYS_CACHE_MS) return cached.keys;
    const read = await deps.store.list();
    cached = { keys: read, readAt: at };
    return read;
  }

  /** Published while it may sign or may have signed a token still live. */
  const published = (key: StoredSigningKey, at: number) => key.retireAt === null || key.retireAt + options.ttlMs + SKEW_MS > at;
  const signing = (key: StoredSigningKey, at: number) => key.activeFrom <= at && (key.retireAt === null || key.retireAt > at);

  function newKey(activeFrom: number): StoredSigningKey {
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const kid = randomUUID();
    const jwk = publicKey.export({ format: "jwk" });
    return {
      kid,
      algorithm: ACCESS_TOKEN_ALGORITHM,
      publicJwk: JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }),
      sealedPrivateKey: deps.keyring.sealSecret(`signing-key:${kid}`, privateKey.export({ format: "der", type: "pkcs8" })),
      createdAt: deps.now(),
      activeFrom,
      retireAt: null,
    };
  }

  async function rotate(activeFrom: number): Promise<string> {
    // One rotation at a time here; two instances rotating at once leave two new keys, both published: harmless.
    rotating ??= (async () => {
      const key = newKey(activeFrom);
      await deps.store.rotateTo(key);
      await deps.store.purgeRetired(deps.now() - options.ttlMs - SKEW_MS);
      await keys(true);
      return key.kid;
    })().finally(() => (rotating = undefined));
    return rotating;
  }

  function privateKeyOf(key: StoredSigningKey): KeyObject {
    let found = privateKeys.get(key.kid);
    if (!found) {
      found = createPrivateKey({ key: deps.keyring.openSecret(`signing-key:${key.kid}`, key.sealedPrivateKey), format: "der", type: "pkcs8" });
      privateKeys.set(key.kid, found);
    }
    return found;
  }

  /** The key to sign with now; rotates when there is none, when it is old, or when its KEK is no longer the active one. */
  async function signer(): Promise<StoredSigningKey> {
    let at = deps.now();
    let candidates = (await keys()).filter((k) => signing(k, at));
    if (candidates.length === 0) {
      // None yet (first start), or the cache missed a rotation: read again before creating one.
      candidates = (await keys(true)).filter((k) => signing(k, at));
      if (candidates.length === 0) {
        await rotate(at);
        at = deps.now();
        candidates = (await keys(true)).filter((k) => signing(k, at));
      }
    }
    const current = candidates.reduce((a, b) => (b.activeFrom > a.activeFrom ? b : a));
    const all = await keys();
    const next = all.some((k) => k.activeFrom > current.activeFrom);
    const stale = at - current.activeFrom >= options.rotationMs || !current.sealedPrivateKey.startsWith(`${deps.keyring.activeKekId}.`);
    if (stale && !next) void rotate(at + options.publishLeadMs).catch(() => undefined); // retried by the next issue
    return current;
  }

  return {
    async issue(session, plan) {
      const key = await signer();
      const at = deps.now();
      const expiresAt = at + options.ttlMs;
      const token = await new SignJWT({
        tenant: session.tenantId,
        sid: session.sessionId,
        role: roleName(session.role),
        aal: session.assurance,
        // The plan claims: what ValidateSession answers (plan_id, subscription_status, entitlements), frozen for the token's lifetime.
        plan: plan.planId,
        plan_status: SUBSCRIPTION_STATUS_NAMES[plan.status],
        entitlements: [...plan.entitlements],
      })
        .setProtectedHeader({ alg: ACCESS_TOKEN_ALGORITHM, kid: key.kid, typ: "at+jwt" })
        .setIssuer(options.issuer)
        .setSubject(session.accountId)
        .setAudience(session.tenantId)
        .setIssuedAt(Math.floor(at / 1000))
        .setExpirationTime(Math.floor(expiresAt / 1000))
        .setJti(randomUUID())
        .sign(privateKeyOf(key));
      return { token, expiresAt: Math.floor(expiresAt / 1000) * 1000, kid: key.kid };
    },

    async jwks() {
      // A verifier may fetch the keys before the first token is issued: there is always one.
      if (!(await keys()).some((k) => signing(k, deps.now()))) await signer();
      const at = deps.now();
      return {
        keys: (await keys())
          .filter((k) => published(k, at))
          .map((k) => ({ ...(JSON.parse(k.publicJwk) as { kty: string; crv: string; x: string }), kid: k.kid, alg: k.algorithm, use: "sig" })),
      };
    },

    rotate: () => rotate(deps.now() + options.publishLeadMs),
  };
}
