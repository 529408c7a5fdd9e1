// Service API keys ("Bearer idk_…"): one tenant, a set of permissions, the secret
// shown once and stored hashed; the prefix tells a key from a session token with
// no lookup. Cached briefly and dropped everywhere on revocation.
import { hashSecret } from "../crypto/keyring.ts";
import { systemRandom } from "../crypto/random.ts";
import { assertNoViolations, DomainError, unauthenticated, type FieldViolation } from "./errors.ts";
import { newId } from "./ids.ts";
import { randomToken } from "./one-time-tokens.ts";
import type { Random } from "./ports/random.ts";
import { createInvalidatedCache, listenForInvalidations, tenantGroup } from "./invalidated-cache.ts";
import type { ApiKeyStore, StoredApiKey } from "./ports/api-keys.ts";
import type { InvalidationBus } from "./ports/invalidation.ts";
import { PERMISSIONS, type ApiKeyPrincipal, type Permission } from "./principal.ts";

export const API_KEY_PREFIX = "idk_";
const SECRET_LENGTH = API_KEY_PREFIX.length + 43; // 32 bytes in base64url
const SECRET_SHAPE = /^idk_[A-Za-z0-9_-]{43}$/;
const NAME_MAX = 200;
/** Most keys one tenant lists (a tenant has a handful; this bounds a response). */
export const API_KEYS_LIST_LIMIT = 1000;

/** True when a bearer token is shaped like an API key (not a session token). */
export function isApiKeySecret(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

export interface ApiKeyCacheOptions {
  /** How long a lookup (found or not) is trusted; at most a few seconds. Default 5 s. */
  maxAgeMs?: number;
  /** Most lookups kept. Default 10,000. */
  maxEntries?: number;
}

export interface ApiKeys {
  /** Creates a key; the secret is in the result and nowhere else, ever. */
  create(input: { tenantId: string; name: string; permissions: readonly string[]; createdBy: string }): Promise<{ key: StoredApiKey; secret: string }>;
  /** The tenant's keys, oldest first, revoked ones included (never secrets or hashes). */
  list(tenantId: string): Promise<StoredApiKey[]>;
  /** The key, or undefined. */
  find(id: string): Promise<StoredApiKey | undefined>;
  /** Revokes the key everywhere at once; idempotent. not_found when there is no such key. */
  revoke(id: string): Promise<StoredApiKey>;
  /** The key's principal; unauthenticated when unknown, malformed or revoked. */
  authenticate(secret: string): Promise<ApiKeyPrincipal>;
  /** The principal when the cache can answer on its own (no I/O), else undefined (including for a cached refusal). */
  authenticateCached(secret: string): ApiKeyPrincipal | undefined;
  /** Starts listening for revocations from other instances. */
  listen(): Promise<void>;
}

/** Checks a key's name and permissions; field paths as in CreateApiKeyRequest. */
export function checkApiKeyInput(name: string, permissions: readonly string[]): { name: string; permissions: Permission[] } {
  const violations: FieldViolation[] = [];
  const trimmed = name.trim();
  if (trimmed.length === 0) violations.push({ field: "name", description: "is required" });
  else if (trimmed.length > NAME_MAX) violations.push({ field: "name", description: `must be at most ${NAME_MAX} characters` });
  else if (/[\p{Cc}\p{Cf}]/u.test(trimmed)) violations.push({ field: "name", description: "must not contain control or invisible characters" });
  if (permissions.length === 0) violations.push({ field: "permissions", description: `name at least one of ${PERMISSIONS.join(", ")}` });
  permissions.forEach((p, i) => {
    if (!(PERMISSIONS as readonly string[]).includes(p))
      violations.push({ field: `permissions[${i}]`, description: `"${p.slice(0, 40)}" is not one of ${PERMISSIONS.join(", ")}` });
    else if (permissions.indexOf(p) !== i) violations.push({ field: `permissions[${i}]`, description: `repeats "${p}"` });
  });
  assertNoViolations(violations);
  return { name: trimmed, permissions: [...permissions] as Permission[] };
}

function principalOf(key: StoredApiKey): ApiKeyPrincipal {
  return { kind: "api_key", tenantId: key.tenantId, apiKeyId: key.id, permissions: key.permissions };
}

const refused = () => unauthenticated("API_KEY_INVALID", "the API key is invalid or revoked");

export function createApiKeys(deps: {
  store: ApiKeyStore;
  invalidation: InvalidationBus;
  now: () => number;
  cache?: ApiKeyCacheOptions;
  random?: Random;
}): ApiKeys {
  const random = deps.random ?? systemRandom;
  // secret hash → the principal, or null for "no such live key".
  const cache = createInvalidatedCache<ApiKeyPrincipal | null>(
    { maxAgeMs: deps.cache?.maxAgeMs ?? 5_000, maxEntries: deps.cache?.maxEntries ?? 10_000 },
    deps.now,
  );

  return {
    async create({ tenantId, name, permissions, createdBy }) {
      const checked = checkApiKeyInput(name, permissions);
      const at = deps.now();
      const secret = `${API_KEY_PREFIX}${randomToken(random, 32)}`;
      const key: StoredApiKey = {
        id: newId(at, random),
        tenantId,
        name: checked.name,
        permissions: checked.permissions,
        createdAt: at,
        revokedAt: null,
        createdBy,
      };
      await deps.store.create(key, hashSecret(secret));
      return { key, secret };
    },

    list: (tenantId) => deps.store.list(tenantId, API_KEYS_LIST_LIMIT),

    find: (id) => deps.store.get(id),

    async revoke(id) {
      const revoked = await deps.store.revoke(id, deps.now());
      if (!revoked) throw new DomainError("not_found", "API_KEY_NOT_FOUND", "API key not found");
      cache.delete(revoked.secretHash);
      await deps.invalidation.publish([{ kind: "apiKey", secretHash: revoked.secretHash }]);
      return revoked.key;
    },

    authenticateCached(secret) {
      if (secret.length !== SECRET_LENGTH) return undefined;
      return cache.get(hashSecret(secret)) ?? undefined;
    },

    async authenticate(secret) {
      if (!SECRET_SHAPE.test(secret)) throw refused();
      const secretHash = hashSecret(secret);
      const hit = cache.get(secretHash);
      if (hit !== undefined) {
        if (hit) return hit;
        throw refused();
      }
      const epoch = cache.epoch();
      const key = await deps.store.findBySecretHash(secretHash);
      const principal = key && key.revokedAt === null ? principalOf(key) : null;
      cache.set(secretHash, principal, epoch, key ? [tenantGroup(key.tenantId)] : []);
      if (!principal) throw refused();
      return principal;
    },

    listen: () =>
      listenForInvalidations(deps.invalidation, cache, (message) => {
        if (message.kind === "apiKey") cache.delete(message.secretHash);
        else if (message.kind === "tenant") cache.deleteGroup(tenantGroup(message.tenantId));
      }),
  };
}
