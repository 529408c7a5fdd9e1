// The key store: every account's wrapped data key, and the erasure ledger. It
// can be a database of its own (KEYSTORE_MYSQL_URL; embedded: keys.sqlite), with
// its own backup policy: a copy of the main database without the key store
// reveals no personal data, and restoring the main database never rolls back
// the ledger.

/** A wrapped data key as the key store holds it. */
export interface StoredDataKey {
  accountId: string;
  tenantId: string;
  /** "<kek id>.<AES-GCM of the data key under that KEK>" (src/crypto/keyring.ts). */
  wrappedKey: string;
  createdAt: number;
}

/** One erased account, as the erasure ledger records it (ids only: no personal data). */
export interface ErasureRecord {
  accountId: string;
  tenantId: string;
  erasedAt: number;
}

/** Reading wrapped keys and the ledger (see ./errors.ts for the errors every method may throw). */
export interface KeyReader {
  /** The account's wrapped data key; undefined when it has none (erased, purged, or never created). */
  get(accountId: string): Promise<string | undefined>;
  /** The wrapped keys of these accounts that have one, by account id (one IN query). */
  getMany(accountIds: string[]): Promise<Map<string, string>>;
  /** Up to `limit` keys in account id order, after `afterAccountId` ("" for the first): a batch of a rotation. */
  list(input: { afterAccountId: string; limit: number }): Promise<StoredDataKey[]>;
  /** Up to `limit` ledger records in account id order, after `afterAccountId` ("" for the first). */
  listErased(input: { afterAccountId: string; limit: number }): Promise<ErasureRecord[]>;
  /** True when the key store answers; never throws. */
  ping(): Promise<boolean>;
}

/** Writing keys: creation, rotation and destruction (the privileged half). */
export interface KeyWriter {
  /** Stores a new account's key; throws already_exists, writing nothing, when the account already has one. */
  put(key: StoredDataKey): Promise<void>;
  /** Deletes these accounts' keys (absent ones are ignored); the ledger is not touched. */
  delete(accountIds: string[]): Promise<void>;
  /**
   * Replaces the account's wrapped key only while it is still `expected`
   * (compare-and-set); false, writing nothing, when it changed or is gone.
   */
  replace(input: { accountId: string; expected: string; wrappedKey: string }): Promise<boolean>;
  /**
   * Destroys the account's key and records it in the erasure ledger, in one
   * transaction. Idempotent: erasing again keeps the first record.
   */
  erase(record: ErasureRecord): Promise<void>;
}

export interface KeyStore extends KeyReader, KeyWriter {}
