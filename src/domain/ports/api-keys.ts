// Service API key storage: the hot path reads by secret hash; administration writes.
import type { Permission } from "../principal.ts";

/** A service API key as stored, without its secret or the secret's hash. */
export interface StoredApiKey {
  id: string;
  tenantId: string;
  name: string;
  permissions: Permission[];
  createdAt: number;
  revokedAt: number | null;
  /** The actor who created it, as the audit trail names actors. */
  createdBy: string;
}

/** Reading API keys (see ./errors.ts for the errors every method may throw). */
export interface ApiKeyReader {
  /** The key whose secret hashes to `secretHash`, revoked or not; undefined when none. */
  findBySecretHash(secretHash: string): Promise<StoredApiKey | undefined>;
  /** The key, or undefined. */
  get(id: string): Promise<StoredApiKey | undefined>;
  /** Up to `limit` of the tenant's keys, oldest first, revoked ones included. */
  list(tenantId: string, limit: number): Promise<StoredApiKey[]>;
}

/** Issuing and revoking API keys: the super admin's privilege. */
export interface ApiKeyWriter {
  /** Stores a new key under hashSecret(secret); the hash and id are unique: a repeat throws already_exists, writing nothing. */
  create(key: StoredApiKey, secretHash: string): Promise<void>;
  /**
   * Revokes the key at `at`; revoking again keeps the first time. Returns the key
   * and its secret hash (to drop it from caches), or undefined when there is none.
   */
  revoke(id: string, at: number): Promise<{ key: StoredApiKey; secretHash: string } | undefined>;
}

export interface ApiKeyStore extends ApiKeyReader, ApiKeyWriter {}
