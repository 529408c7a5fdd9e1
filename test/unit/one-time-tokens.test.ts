// One-time tokens and codes (src/domain/one-time-tokens.ts) and ids drawn from
// the injected Random: the same seed makes the same tokens, codes and ids (so
// tests can be deterministic); codes stay uniform; tokens are stored only
// hashed, single use, bound to their purpose and expiring.
import { describe, expect, it } from "vitest";
import { hashSecret } from "../../src/crypto/keyring.ts";
import { systemRandom } from "../../src/crypto/random.ts";
import { isId, newId } from "../../src/domain/ids.ts";
import { discardLinkToken, issueLinkToken, peekOneTimeToken, randomDigits, randomToken, takeOneTimeToken } from "../../src/domain/one-time-tokens.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";
import { scriptedRandom, seededRandom } from "../support/random.ts";

const T0 = Date.UTC(2030, 0, 1);
const identity = { id: "identity-1", tenantId: "default", accountId: "account-1" };
const meta = { ip: "192.0.2.1", userAgent: "test" };

describe("randomness drawn from the injected Random", () => {
  it("makes the same tokens, codes and ids from the same seed, and others from another seed", () => {
    const draw = (seed: string) => {
      const random = seededRandom(seed);
      return { token: randomToken(random), code: randomDigits(random, 8), id: newId(T0, random) };
    };
    expect(draw("a")).toEqual(draw("a"));
    const [a, b] = [draw("a"), draw("b")];
    expect(a.token).not.toBe(b.token);
    expect(a.id).not.toBe(b.id);
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
    expect(a.code).toMatch(/^\d{8}$/);
    expect(isId(a.id)).toBe(true);
    expect(a.id.startsWith(newId(T0, systemRandom).slice(0, 13))).toBe(true); // the time prefix is the clock's
  });

  it("redraws bytes of 250 and above, so every digit is equally likely", () => {
    expect(randomDigits(scriptedRandom([250, 255, 3, 249, 251, 10]), 3)).toBe("390");
    const counts = new Array<number>(10).fill(0);
    for (const digit of randomDigits(seededRandom("uniform"), 50_000)) counts[Number(digit)]!++;
    for (const count of counts) expect(Math.abs(count - 5_000)).toBeLessThan(400);
  });

  it("defaults to the CSPRNG: two ids or tokens never repeat", () => {
    expect(newId(T0)).not.toBe(newId(T0));
    expect(randomToken(systemRandom)).not.toBe(randomToken(systemRandom));
  });
});

describe("link tokens", () => {
  function harness(seed = "links") {
    let clock = T0;
    const ephemeral = createMemoryStores({ now: () => clock });
    const tenants = { get: async () => ({ id: "default", name: "Default", settings: DEFAULT_TENANT_SETTINGS, createdAt: T0 }) };
    const limits = { consume: async () => ({ refund: async () => {} }) };
    const deps = { tokens: ephemeral.tokens, tenants, limits, now: () => clock, random: seededRandom(seed) };
    return { deps, ephemeral, advance: (ms: number) => (clock += ms) };
  }

  it("issues the seed's token, stores only its hash, and is used once", async () => {
    const h = harness();
    const { token, expiresAt } = await issueLinkToken(h.deps, "verify_email", identity, 60_000, { extra: "x" });
    expect(token).toBe(randomToken(seededRandom("links")));
    expect(expiresAt).toBe(T0 + 60_000);
    expect(await h.ephemeral.tokens.peek(token)).toBeUndefined(); // never stored raw
    const peeked = await peekOneTimeToken(h.deps, { field: "token", token, purpose: "verify_email", tenantId: "default", meta });
    expect(peeked.tokenHash).toBe(hashSecret(token));
    expect(peeked.token).toMatchObject({ purpose: "verify_email", accountId: "account-1", identityId: "identity-1", data: { extra: "x" } });
    await takeOneTimeToken(h.deps, "token", peeked.tokenHash, "verify_email");
    await expect(takeOneTimeToken(h.deps, "token", peeked.tokenHash, "verify_email")).rejects.toMatchObject({
      kind: "invalid_argument",
      reason: "TOKEN_INVALID",
    });
    await h.ephemeral.close();
  });

  it("refuses a token of another purpose, an expired one and a discarded one", async () => {
    const h = harness();
    const { token } = await issueLinkToken(h.deps, "verify_email", identity, 60_000);
    await expect(
      peekOneTimeToken(h.deps, { field: "code", token, purpose: ["reset_password", "invitation"], tenantId: "default", meta }),
    ).rejects.toMatchObject({ reason: "TOKEN_INVALID", fieldViolations: [{ field: "code" }] });
    h.advance(60_000);
    await expect(peekOneTimeToken(h.deps, { field: "token", token, purpose: "verify_email", tenantId: "default", meta })).rejects.toMatchObject({
      reason: "TOKEN_INVALID",
    });
    const second = await issueLinkToken(h.deps, "reset_password", identity, 60_000);
    await discardLinkToken(h.deps, second.token);
    await expect(peekOneTimeToken(h.deps, { field: "code", token: second.token, purpose: "reset_password", tenantId: "default", meta })).rejects.toMatchObject({
      reason: "TOKEN_INVALID",
    });
    await h.ephemeral.close();
  });
});
