// A tenant's social sign-in providers (Google, Apple, any OpenID Connect
// provider), managed by its admins. Settings are stored in clear; the secrets
// (client secret, Apple's private key) are sealed under a data key of the
// provider's own, wrapped by the KEK, and leave this module only towards the
// federation adapter (./ports/federation.ts), never in an answer.
import { createPrivateKey } from "node:crypto";
import { decryptString, encryptString, type Keyring } from "../crypto/keyring.ts";
import { assertNoViolations, DomainError, type FieldViolation } from "./errors.ts";
import { newId } from "./ids.ts";
import type { Random } from "./ports/random.ts";
import type { SocialProviderSettings, SocialProviderStore, StoredSocialProvider } from "./ports/social-providers.ts";

export const SocialProviderKind = { GOOGLE: 1, APPLE: 2, OIDC: 3 } as const;
export type SocialProviderKind = (typeof SocialProviderKind)[keyof typeof SocialProviderKind];

/** The issuers GOOGLE and APPLE stand for when none is given. */
export const WELL_KNOWN_ISSUERS: Record<number, string> = {
  [SocialProviderKind.GOOGLE]: "https://accounts.google.com",
  [SocialProviderKind.APPLE]: "https://appleid.apple.com",
};

const DEFAULT_SCOPES: Record<number, string[]> = {
  [SocialProviderKind.GOOGLE]: ["openid", "email", "profile"],
  [SocialProviderKind.APPLE]: ["openid", "email", "name"],
  [SocialProviderKind.OIDC]: ["openid", "email", "profile"],
};

/** Most providers one tenant has (a handful in practice; bounds a listing). */
export const SOCIAL_PROVIDERS_LIMIT = 100;
const NAME_MAX = 200;
const URL_MAX = 500;
const REDIRECT_URIS_MAX = 20;
const SCOPES_MAX = 20;
const SECRET_MAX = 4096;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/; // RFC 6749 §3.3
const APPLE_ID = /^[A-Z0-9]{10}$/;

export type { SocialProviderSettings } from "./ports/social-providers.ts";

export interface SocialProviderSecrets {
  clientSecret: string;
  applePrivateKey: string;
}

/** A provider as admins see it: never a secret, only whether each is set. */
export interface SocialProviderView extends SocialProviderSettings {
  id: string;
  tenantId: string;
  clientSecretSet: boolean;
  applePrivateKeySet: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A provider with its secrets opened: for the federation adapter only. */
export interface OpenedSocialProvider extends SocialProviderView, SocialProviderSecrets {}

export interface SocialProviders {
  create(tenantId: string, settings: SocialProviderSettings, secrets: SocialProviderSecrets): Promise<SocialProviderView>;
  list(tenantId: string): Promise<SocialProviderView[]>;
  /** Applies `patch` (absent fields unchanged; the kind never changes). not_found SOCIAL_PROVIDER_NOT_FOUND. */
  update(tenantId: string, id: string, patch: Partial<Omit<SocialProviderSettings, "kind">> & Partial<SocialProviderSecrets>): Promise<SocialProviderView>;
  /** not_found SOCIAL_PROVIDER_NOT_FOUND when the tenant has no such provider. */
  delete(tenantId: string, id: string): Promise<void>;
  /** The provider with its secrets; not_found SOCIAL_PROVIDER_NOT_FOUND. */
  open(tenantId: string, id: string): Promise<OpenedSocialProvider>;
}

export const providerNotFound = () => new DomainError("not_found", "SOCIAL_PROVIDER_NOT_FOUND", "social provider not found");

const secretsContext = (id: string) => `social_provider:${id}:secrets`;
/** Whose data key a provider's is, for the keyring (wrapping is bound to it). */
export const socialProviderKeyOwner = (id: string) => `social_provider:${id}`;
const keyOwner = socialProviderKeyOwner;

/** True for an http(s) URL this service may fetch: https, or http on a loopback host when allowed (tests, development). */
export function isFetchableUrl(raw: string, allowHttpLoopback: boolean): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.hash !== "" || url.search !== "" || url.username !== "" || url.password !== "") return false;
  if (url.protocol === "https:") return true;
  return allowHttpLoopback && url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

function checkRedirectUri(raw: string): string | undefined {
  if (raw.length > 2000) return "must be at most 2000 characters";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "must be an absolute URL";
  }
  if (url.hash !== "") return "must not have a fragment";
  if (["javascript:", "data:", "file:", "vbscript:", "blob:"].includes(url.protocol)) return `must not use ${url.protocol}`;
  return undefined;
}

function checkApplePrivateKey(pem: string): string | undefined {
  try {
    const key = createPrivateKey({ key: pem, format: "pem" });
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") return "must be a P-256 (ES256) key";
    return undefined;
  } catch {
    return "must be a PKCS#8 private key in PEM";
  }
}

/** Checks and normalizes a provider's settings and secrets; one InvalidArgument naming every bad field. */
export function checkSocialProvider(
  settings: SocialProviderSettings,
  secrets: SocialProviderSecrets,
  allowHttpLoopback: boolean,
): { settings: SocialProviderSettings; secrets: SocialProviderSecrets } {
  const v: FieldViolation[] = [];
  const bad = (field: string, description: string) => v.push({ field, description });
  const kind = settings.kind;
  const known = (Object.values(SocialProviderKind) as number[]).includes(kind);
  if (!known) bad("provider.kind", "must be GOOGLE, APPLE or OIDC");
  const name = settings.name.trim();
  if (name.length === 0) bad("provider.name", "is required");
  else if (name.length > NAME_MAX) bad("provider.name", `must be at most ${NAME_MAX} characters`);
  else if (/[\p{Cc}\p{Cf}]/u.test(name)) bad("provider.name", "must not contain control or invisible characters");

  let issuer = settings.issuer.trim();
  if (issuer === "" && WELL_KNOWN_ISSUERS[kind]) issuer = WELL_KNOWN_ISSUERS[kind]!;
  if (issuer === "") bad("provider.issuer", "is required for OIDC providers");
  else if (issuer.length > URL_MAX) bad("provider.issuer", `must be at most ${URL_MAX} characters`);
  else if (!isFetchableUrl(issuer, allowHttpLoopback)) bad("provider.issuer", "must be an https URL without query or fragment");

  const clientId = settings.clientId.trim();
  if (clientId === "") bad("provider.client_id", "is required");
  else if (clientId.length > URL_MAX || /[\p{Cc}\s]/u.test(clientId)) bad("provider.client_id", `must be at most ${URL_MAX} characters, without spaces`);

  if (secrets.clientSecret.length > SECRET_MAX) bad("client_secret", `must be at most ${SECRET_MAX} characters`);
  if (kind !== SocialProviderKind.APPLE && known && secrets.clientSecret === "") bad("client_secret", "is required");

  let scopes = settings.scopes.length === 0 && known ? [...DEFAULT_SCOPES[kind]!] : settings.scopes.map((s) => s.trim());
  if (scopes.length > SCOPES_MAX) bad("provider.scopes", `at most ${SCOPES_MAX}`);
  scopes.forEach((scope, i) => {
    if (!SCOPE_TOKEN.test(scope)) bad(`provider.scopes[${i}]`, "must be a scope token (printable ASCII without spaces or quotes)");
  });
  if (!scopes.includes("openid")) scopes = ["openid", ...scopes];
  scopes = [...new Set(scopes)];

  const redirectUris = settings.redirectUris.map((u) => u.trim());
  if (redirectUris.length === 0) bad("provider.redirect_uris", "name at least one");
  if (redirectUris.length > REDIRECT_URIS_MAX) bad("provider.redirect_uris", `at most ${REDIRECT_URIS_MAX}`);
  redirectUris.forEach((uri, i) => {
    const problem = checkRedirectUri(uri);
    if (problem) bad(`provider.redirect_uris[${i}]`, problem);
  });

  let { appleTeamId, appleKeyId } = settings;
  let { applePrivateKey } = secrets;
  if (kind === SocialProviderKind.APPLE) {
    if (!APPLE_ID.test(appleTeamId)) bad("provider.apple.team_id", "must be 10 upper-case letters or digits");
    if (!APPLE_ID.test(appleKeyId)) bad("provider.apple.key_id", "must be 10 upper-case letters or digits");
    if (applePrivateKey === "") bad("apple_private_key", "is required for APPLE providers");
    else if (applePrivateKey.length > SECRET_MAX) bad("apple_private_key", `must be at most ${SECRET_MAX} characters`);
    else {
      const problem = checkApplePrivateKey(applePrivateKey);
      if (problem) bad("apple_private_key", problem);
    }
  } else {
    if (appleTeamId !== "") bad("provider.apple.team_id", "is for APPLE providers only");
    if (appleKeyId !== "") bad("provider.apple.key_id", "is for APPLE providers only");
    if (applePrivateKey !== "") bad("apple_private_key", "is for APPLE providers only");
    appleTeamId = "";
    appleKeyId = "";
    applePrivateKey = "";
  }
  assertNoViolations(v);
  return {
    settings: { kind, name, issuer, clientId, scopes, redirectUris, appleTeamId, appleKeyId },
    secrets: { clientSecret: secrets.clientSecret, applePrivateKey },
  };
}

export function createSocialProviders(deps: {
  store: SocialProviderStore;
  keyring: Keyring;
  now: () => number;
  random: Random;
  /** Accept http issuers on loopback hosts (tests, development). */
  allowHttpLoopback: boolean;
}): SocialProviders {
  const { store, keyring } = deps;

  function openSecrets(row: StoredSocialProvider): SocialProviderSecrets {
    const key = keyring.unwrapDataKey(keyOwner(row.id), row.wrappedKey);
    return JSON.parse(decryptString(key, row.secretsSealed, secretsContext(row.id))) as SocialProviderSecrets;
  }

  function view(row: StoredSocialProvider, secrets: SocialProviderSecrets): SocialProviderView {
    const { wrappedKey: _key, secretsSealed: _sealed, ...rest } = row;
    return { ...rest, clientSecretSet: secrets.clientSecret !== "", applePrivateKeySet: secrets.applePrivateKey !== "" };
  }

  function seal(id: string, wrappedKey: string, secrets: SocialProviderSecrets): string {
    return encryptString(keyring.unwrapDataKey(keyOwner(id), wrappedKey), JSON.stringify(secrets), secretsContext(id));
  }

  async function load(tenantId: string, id: string): Promise<StoredSocialProvider> {
    // A malformed id names no provider: no query.
    const row = id.length > 0 && id.length <= 36 ? await store.get(tenantId, id) : undefined;
    if (!row) throw providerNotFound();
    return row;
  }

  return {
    async create(tenantId, settings, secrets) {
      const checked = checkSocialProvider(settings, secrets, deps.allowHttpLoopback);
      const at = deps.now();
      const id = newId(at, deps.random);
      const { wrapped } = keyring.newDataKey(keyOwner(id));
      const row: StoredSocialProvider = {
        id,
        tenantId,
        ...checked.settings,
        wrappedKey: wrapped,
        secretsSealed: seal(id, wrapped, checked.secrets),
        createdAt: at,
        updatedAt: at,
      };
      await store.create(row);
      return view(row, checked.secrets);
    },

    async list(tenantId) {
      const rows = await store.list(tenantId, SOCIAL_PROVIDERS_LIMIT);
      return rows.map((row) => view(row, openSecrets(row)));
    },

    async update(tenantId, id, patch) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const row = await load(tenantId, id);
        const current = openSecrets(row);
        const { wrappedKey: _k, secretsSealed: _s, id: _id, tenantId: _t, createdAt: _c, updatedAt: _u, ...settings } = row;
        const checked = checkSocialProvider(
          { ...settings, ...stripUndefined(patch, ["name", "issuer", "clientId", "scopes", "redirectUris", "appleTeamId", "appleKeyId"]) },
          { ...current, ...stripUndefined(patch, ["clientSecret", "applePrivateKey"]) },
          deps.allowHttpLoopback,
        );
        // A strictly later time: the compare-and-set's version.
        const at = Math.max(deps.now(), row.updatedAt + 1);
        const next: StoredSocialProvider = { ...row, ...checked.settings, secretsSealed: seal(id, row.wrappedKey, checked.secrets), updatedAt: at };
        if (await store.update(next, row.updatedAt)) return view(next, checked.secrets);
      }
      throw new DomainError("unavailable", "CONCURRENT_UPDATE", "the provider is being changed concurrently; try again");
    },

    async delete(tenantId, id) {
      if (!(id.length > 0 && id.length <= 36 && (await store.delete(tenantId, id)))) throw providerNotFound();
    },

    async open(tenantId, id) {
      const row = await load(tenantId, id);
      const secrets = openSecrets(row);
      return { ...view(row, secrets), ...secrets };
    },
  };
}

function stripUndefined<T extends object, K extends keyof T>(value: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (value[key] !== undefined) out[key] = value[key];
  return out;
}
