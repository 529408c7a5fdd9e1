// Social sign-in providers of a tenant: their settings in clear, their secrets
// sealed under a data key of the provider's own (wrapped by the KEK).
/** The settings an admin gives (field paths as in identity.v1.SocialProvider), stored in clear. */
export interface SocialProviderSettings {
  /** SocialProviderKind (src/domain/social-providers.ts). */
  kind: number;
  name: string;
  issuer: string;
  clientId: string;
  scopes: string[];
  redirectUris: string[];
  appleTeamId: string;
  appleKeyId: string;
}

/** A provider as stored. */
export interface StoredSocialProvider extends SocialProviderSettings {
  id: string;
  tenantId: string;
  /** The provider's data key, wrapped by the KEK. */
  wrappedKey: string;
  /** JSON of the secrets (client secret, Apple private key), sealed under that key. */
  secretsSealed: string;
  createdAt: number;
  updatedAt: number;
}

/** Storing providers (see ./errors.ts for the errors every method may throw). */
export interface SocialProviderStore {
  /** Stores a new provider. */
  create(provider: StoredSocialProvider): Promise<void>;
  /** The tenant's provider, or undefined (also for another tenant's). */
  get(tenantId: string, id: string): Promise<StoredSocialProvider | undefined>;
  /** Up to `limit` of the tenant's providers, oldest first. */
  list(tenantId: string, limit: number): Promise<StoredSocialProvider[]>;
  /**
   * Replaces the provider's fields with `next`, only while its updated_at is still
   * `expectedUpdatedAt` (a compare-and-set: concurrent updates never lose one
   * another). False, writing nothing, when it changed meanwhile or is gone.
   */
  update(next: StoredSocialProvider, expectedUpdatedAt: number): Promise<boolean>;
  /** Deletes the tenant's provider; false when there was none. */
  delete(tenantId: string, id: string): Promise<boolean>;
  /** Up to `limit` providers of every tenant with id after `afterId` ("" from the start), by id: their wrapped keys (KEK rotation). */
  listKeys(input: { afterId: string; limit: number }): Promise<Array<{ id: string; wrappedKey: string }>>;
  /** Replaces the provider's wrapped key while it is still `expected` (a compare-and-set); false, writing nothing, otherwise. */
  replaceKey(input: { id: string; expected: string; wrappedKey: string }): Promise<boolean>;
}
