import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { constantTimeEqual, createKeyring, decryptString, encryptString, hashSecret } from "../../src/crypto/keyring.ts";
import { systemRandom } from "../../src/crypto/random.ts";
import { randomToken as drawToken } from "../../src/domain/one-time-tokens.ts";

// Tokens are drawn from the injected Random (src/domain/one-time-tokens.ts); here, the CSPRNG.
const randomToken = (bytes?: number) => drawToken(systemRandom, bytes);

const ACCOUNT = "0190a8b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b";
const OTHER_ACCOUNT = "0190a8b2-7c3d-7e4f-8a1b-2c3d4e5f6a7c";

// Fixed keys keep the suite deterministic where it matters (blind indexes).
const K1 = Buffer.alloc(32, 1);
const K2 = Buffer.alloc(32, 2);
const BLIND = Buffer.alloc(32, 9);

/** Flips one bit of the byte at `index` of a base64url string's decoded bytes. */
function flipByte(sealed: string, index: number): string {
  const raw = Buffer.from(sealed, "base64url");
  const at = index < 0 ? raw.length + index : index;
  raw[at] = (raw[at] ?? 0) ^ 0x01;
  return raw.toString("base64url");
}

describe("createKeyring data keys", () => {
  it("requires at least one KEK", () => {
    expect(() => createKeyring([], BLIND)).toThrow();
  });

  it("round-trips a data key", () => {
    const keyring = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const { key, wrapped } = keyring.newDataKey(ACCOUNT);
    expect(key).toHaveLength(32);
    expect(wrapped.startsWith("k1.")).toBe(true);
    expect(wrapped).not.toContain(key.toString("base64url"));
    expect(keyring.unwrapDataKey(ACCOUNT, wrapped).equals(key)).toBe(true);
  });

  it("creates a different data key each time", () => {
    const keyring = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const a = keyring.newDataKey(ACCOUNT);
    const b = keyring.newDataKey(ACCOUNT);
    expect(a.key.equals(b.key)).toBe(false);
    expect(a.wrapped).not.toBe(b.wrapped);
  });

  it("binds the wrapped key to its account id (AAD)", () => {
    const keyring = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const { wrapped } = keyring.newDataKey(ACCOUNT);
    expect(() => keyring.unwrapDataKey(OTHER_ACCOUNT, wrapped)).toThrow();
  });

  it("refuses a tampered wrapped key", () => {
    const keyring = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const { wrapped } = keyring.newDataKey(ACCOUNT);
    const body = wrapped.slice("k1.".length);
    expect(() => keyring.unwrapDataKey(ACCOUNT, `k1.${flipByte(body, -1)}`)).toThrow();
    expect(() => keyring.unwrapDataKey(ACCOUNT, `k1.${flipByte(body, 0)}`)).toThrow();
    expect(() => keyring.unwrapDataKey(ACCOUNT, "k1.AAAA")).toThrow();
  });

  it("supports rotation: unwraps keys wrapped under an older KEK and wraps new ones with the first", () => {
    const old = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const wrappedUnderK1 = old.newDataKey(ACCOUNT);

    const rotated = createKeyring(
      [
        { id: "k2", key: K2 },
        { id: "k1", key: K1 },
      ],
      BLIND,
    );
    expect(rotated.activeKekId).toBe("k2");
    expect(rotated.unwrapDataKey(ACCOUNT, wrappedUnderK1.wrapped).equals(wrappedUnderK1.key)).toBe(true);

    const fresh = rotated.newDataKey(ACCOUNT);
    expect(fresh.wrapped.startsWith("k2.")).toBe(true);
    expect(rotated.unwrapDataKey(ACCOUNT, fresh.wrapped).equals(fresh.key)).toBe(true);
    // The old keyring does not know k2.
    expect(() => old.unwrapDataKey(ACCOUNT, fresh.wrapped)).toThrow(/unknown KEK/);
  });

  it("does not unwrap with the wrong key under a known id", () => {
    const a = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const b = createKeyring([{ id: "k1", key: K2 }], BLIND);
    expect(() => b.unwrapDataKey(ACCOUNT, a.newDataKey(ACCOUNT).wrapped)).toThrow();
  });

  it("throws on an unknown KEK id or a missing id", () => {
    const keyring = createKeyring([{ id: "k1", key: K1 }], BLIND);
    const { wrapped } = keyring.newDataKey(ACCOUNT);
    expect(() => keyring.unwrapDataKey(ACCOUNT, `k9.${wrapped.slice(3)}`)).toThrow(/unknown KEK/);
    expect(() => keyring.unwrapDataKey(ACCOUNT, wrapped.slice(3))).toThrow();
    expect(() => keyring.unwrapDataKey(ACCOUNT, "")).toThrow();
  });
});

describe("encryptString / decryptString", () => {
  const dataKey = randomBytes(32);

  it("round-trips text, including non-ASCII and empty strings", () => {
    for (const text of ["ann@example.com", "Zoë 🦊 — ünïcödé", ""]) {
      const sealed = encryptString(dataKey, text, "accounts.email");
      if (text !== "") expect(sealed).not.toContain(text);
      expect(decryptString(dataKey, sealed, "accounts.email")).toBe(text);
    }
  });

  it("produces base64url output", () => {
    expect(encryptString(dataKey, "hello", "ctx")).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("uses a random IV: two encryptions of the same text differ", () => {
    const a = encryptString(dataKey, "same text", "ctx");
    const b = encryptString(dataKey, "same text", "ctx");
    expect(a).not.toBe(b);
    expect(Buffer.from(a, "base64url").subarray(0, 12).equals(Buffer.from(b, "base64url").subarray(0, 12))).toBe(false);
    expect(decryptString(dataKey, a, "ctx")).toBe("same text");
    expect(decryptString(dataKey, b, "ctx")).toBe("same text");
  });

  it("throws on any flipped byte (IV, tag or body)", () => {
    const sealed = encryptString(dataKey, "secret value", "ctx");
    const length = Buffer.from(sealed, "base64url").length;
    for (const index of [0, 11, 12, 27, 28, length - 1]) {
      expect(() => decryptString(dataKey, flipByte(sealed, index), "ctx"), `byte ${index}`).toThrow();
    }
  });

  it("throws under another context (AAD)", () => {
    const sealed = encryptString(dataKey, "secret value", "accounts.email:1");
    expect(() => decryptString(dataKey, sealed, "accounts.email:2")).toThrow();
    expect(() => decryptString(dataKey, sealed, "")).toThrow();
  });

  it("throws under another data key", () => {
    const sealed = encryptString(dataKey, "secret value", "ctx");
    expect(() => decryptString(randomBytes(32), sealed, "ctx")).toThrow();
  });

  it("throws on truncated ciphertext", () => {
    const sealed = encryptString(dataKey, "secret value", "ctx");
    const raw = Buffer.from(sealed, "base64url");
    expect(() => decryptString(dataKey, raw.subarray(0, 20).toString("base64url"), "ctx")).toThrow(/too short/);
    expect(() => decryptString(dataKey, raw.subarray(0, raw.length - 1).toString("base64url"), "ctx")).toThrow();
  });
});

describe("blindIndex", () => {
  const keyring = createKeyring([{ id: "k1", key: K1 }], BLIND);

  it("is deterministic and 64 hex chars", () => {
    const a = keyring.blindIndex("email", "ann@example.com");
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(keyring.blindIndex("email", "ann@example.com")).toBe(a);
    // Another keyring with the same blind key (e.g. another worker) agrees.
    expect(createKeyring([{ id: "x", key: K2 }], BLIND).blindIndex("email", "ann@example.com")).toBe(a);
  });

  it("separates namespaces", () => {
    expect(keyring.blindIndex("email", "+15551234567")).not.toBe(keyring.blindIndex("phone", "+15551234567"));
    // The separator prevents namespace/value boundary confusion.
    expect(keyring.blindIndex("ab", "c")).not.toBe(keyring.blindIndex("a", "bc"));
  });

  it("depends on the blind key", () => {
    const other = createKeyring([{ id: "k1", key: K1 }], Buffer.alloc(32, 8));
    expect(other.blindIndex("email", "ann@example.com")).not.toBe(keyring.blindIndex("email", "ann@example.com"));
  });

  it("differs for different values", () => {
    expect(keyring.blindIndex("email", "ann@example.com")).not.toBe(keyring.blindIndex("email", "bob@example.com"));
  });
});

describe("randomToken / hashSecret / constantTimeEqual", () => {
  it("randomToken(32) is 43 base64url characters", () => {
    const token = randomToken(32);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, "base64url")).toHaveLength(32);
  });

  it("randomToken sizes follow the byte count", () => {
    expect(randomToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("1000 tokens are unique", () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken(32)));
    expect(tokens.size).toBe(1000);
  });

  it("hashSecret is hex SHA-256 of the UTF-8 secret", () => {
    for (const secret of ["", "abc", "token.with.dots", "ünïcödé 🦊"]) {
      expect(hashSecret(secret)).toBe(createHash("sha256").update(Buffer.from(secret, "utf8")).digest("hex"));
    }
    expect(hashSecret("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("constantTimeEqual compares strings", () => {
    expect(constantTimeEqual("abc", "abc")).toBe(true);
    expect(constantTimeEqual("abc", "abd")).toBe(false);
    expect(constantTimeEqual("abc", "abcd")).toBe(false);
    expect(constantTimeEqual("", "")).toBe(true);
  });
});
