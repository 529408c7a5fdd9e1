// The keys that sign access tokens (src/domain/access-tokens.ts): a few rows,
// read whole (see ./errors.ts for the errors every method may throw).

export interface StoredSigningKey {
  kid: string;
  /** The JWS algorithm ("EdDSA"). */
  algorithm: string;
  /** The public half as a JWK (JSON text). */
  publicJwk: string;
  /** The private half, sealed under the KEK (Keyring.sealSecret, context = kid). */
  sealedPrivateKey: string;
  createdAt: number;
  /** Signs from then on. */
  activeFrom: number;
  /** Signs no more from then on; null while it is the newest key. */
  retireAt: number | null;
}

export interface SigningKeyStore {
  /** Every stored key. */
  list(): Promise<StoredSigningKey[]>;
  /** Adds `key` and retires, at `key.activeFrom`, every key not yet retired — in one transaction. */
  rotateTo(key: StoredSigningKey): Promise<void>;
  /** Deletes the keys retired before `before`; returns how many. */
  purgeRetired(before: number): Promise<number>;
}
