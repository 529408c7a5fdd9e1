// Envelope encryption and blind indexes. Each account has its own data key
// (AES-256-GCM); data keys are stored wrapped by a key-encryption key (KEK)
// from configuration. Lookups by email go through an HMAC "blind index" made
// with a separate key, so the database never needs the address in clear.
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from "node:crypto";

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface Keyring {
  /** Creates a fresh data key and returns it with its wrapped (storable) form. */
  newDataKey(accountId: string): { key: Buffer; wrapped: string };
  /** Unwraps a stored data key; the account id is authenticated as associated data. */
  unwrapDataKey(accountId: string, wrapped: string): Buffer;
  /**
   * The data key wrapped under the active KEK (key rotation): `wrapped` itself
   * when it already is, else unwrapped with its own KEK and wrapped anew. The
   * data key — and so everything sealed under it — does not change.
   */
  rewrapDataKey(accountId: string, wrapped: string): string;
  /** HMAC-SHA-256 of a normalized value, namespaced by what it is ("email", "phone"). */
  blindIndex(namespace: string, normalizedValue: string): string;
  /** The id of the KEK that wraps new data keys. */
  readonly activeKekId: string;
  /** Seals a service secret (a token-signing private key) under the active KEK; `context` (its id) is authenticated. */
  sealSecret(context: string, secret: Buffer): string;
  /** Opens what sealSecret sealed; throws when its KEK is not configured or it was tampered with. */
  openSecret(context: string, sealed: string): Buffer;
}

/** A raw key (a data key, opened per account) or a KeyObject (the keyring's own, imported once). */
type Key = Buffer | KeyObject;

function seal(key: Key, plaintext: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(aad, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

function open(key: Key, sealed: string, aad: string): Buffer {
  const raw = Buffer.from(sealed, "base64url");
  if (raw.length < IV_BYTES + TAG_BYTES) throw new Error("ciphertext too short");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad, "utf8"));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
}

/** Encrypts a UTF-8 string under a data key; `context` binds it to its row and column. */
export function encryptString(dataKey: Buffer, plaintext: string, context: string): string {
  return seal(dataKey, Buffer.from(plaintext, "utf8"), context);
}

export function decryptString(dataKey: Buffer, sealed: string, context: string): string {
  return open(dataKey, sealed, context).toString("utf8");
}

export function createKeyring(keks: ReadonlyArray<{ id: string; key: Buffer }>, blindIndexKey: Buffer): Keyring {
  const first = keks[0];
  if (first === undefined) throw new Error("at least one key-encryption key is required");
  // Imported into KeyObjects once: a raw key is imported again by every cipher and HMAC made with it
  // (about 7 µs each, several times per sign-in).
  const byId = new Map(keks.map((k) => [k.id, createSecretKey(k.key)]));
  const activeKek = byId.get(first.id)!;
  const blindKey = createSecretKey(blindIndexKey);
  function unwrapDataKey(accountId: string, wrapped: string): Buffer {
    const dot = wrapped.indexOf(".");
    const kek = byId.get(wrapped.slice(0, dot));
    if (dot < 0 || kek === undefined) throw new Error(`data key of ${accountId} is wrapped by an unknown KEK`);
    return open(kek, wrapped.slice(dot + 1), `dek:${accountId}`);
  }
  return {
    activeKekId: first.id,
    newDataKey(accountId) {
      const key = randomBytes(32);
      return { key, wrapped: `${first.id}.${seal(activeKek, key, `dek:${accountId}`)}` };
    },
    unwrapDataKey,
    rewrapDataKey(accountId, wrapped) {
      if (wrapped.startsWith(`${first.id}.`)) return wrapped;
      return `${first.id}.${seal(activeKek, unwrapDataKey(accountId, wrapped), `dek:${accountId}`)}`;
    },
    sealSecret(context, secret) {
      return `${first.id}.${seal(first.key, secret, `secret:${context}`)}`;
    },
    openSecret(context, sealed) {
      const dot = sealed.indexOf(".");
      const kek = byId.get(sealed.slice(0, dot));
      if (dot < 0 || kek === undefined) throw new Error(`secret ${context} is sealed by an unknown KEK`);
      return open(kek, sealed.slice(dot + 1), `secret:${context}`);
    },
    blindIndex(namespace, normalizedValue) {
      return createHmac("sha256", blindKey).update(`${namespace}\0${normalizedValue}`).digest("hex");
    },
  };
}

/** How secrets (session tokens, link tokens, API keys) are stored: SHA-256, hex. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
