// Signing keys of access tokens over time (src/domain/access-tokens.ts), on a
// clock the test moves: a new key is published before it signs, a retired key
// stays published until its last token expired, keys age out, and a key sealed
// under a KEK that is no longer the active one is replaced. Tokens are verified
// with jose against the published keys, as a third party would.
import { randomBytes } from "node:crypto";
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from "jose";
import { describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { createAccessTokens } from "../../src/domain/access-tokens.ts";
import type { SigningKeyStore, StoredSigningKey } from "../../src/domain/ports/signing-keys.ts";
import { AssuranceLevel, Role, type SessionRecord, SubscriptionStatus } from "../../src/domain/types.ts";

const PLAN = { planId: "pro", status: SubscriptionStatus.TRIALING, entitlements: ["notes.read", "exports"] };

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

function memoryStore(): SigningKeyStore & { rows: StoredSigningKey[] } {
  const rows: StoredSigningKey[] = [];
  return {
    rows,
    list: async () => rows.map((r) => ({ ...r })),
    async rotateTo(key) {
      for (const r of rows) if (r.retireAt === null) r.retireAt = key.activeFrom;
      rows.push({ ...key });
    },
    async purgeRetired(before) {
      const keep = rows.filter((r) => r.retireAt === null || r.retireAt >= before);
      const purged = rows.length - keep.length;
      rows.splice(0, rows.length, ...keep);
      return purged;
    },
  };
}

const session: SessionRecord = {
  sessionId: "s1",
  accountId: "01a22b10-120f-7242-ae96-9133037af370",
  tenantId: "default",
  role: Role.ADMIN,
  assurance: AssuranceLevel.AAL1,
  createdAt: 0,
  lastSeenAt: 0,
  expiresAt: Number.MAX_SAFE_INTEGER,
  absoluteExpiresAt: Number.MAX_SAFE_INTEGER,
  client: "",
} as SessionRecord;

function setup(keks = [{ id: "k1", key: randomBytes(32) }]) {
  let clock = Date.now();
  const store = memoryStore();
  const make = (kekList: typeof keks) =>
    createAccessTokens({
      store,
      keyring: createKeyring(kekList, randomBytes(32)),
      now: () => clock,
      options: { issuer: "https://id.example.test", ttlMs: 5 * MINUTE, rotationMs: 30 * DAY, publishLeadMs: MINUTE },
    });
  return { store, tokens: make(keks), make, advance: (ms: number) => (clock += ms), now: () => clock };
}

const kids = async (t: { jwks(): Promise<{ keys: Array<{ kid: string }> }> }) => (await t.jwks()).keys.map((k) => k.kid);
const verify = async (token: string, jwks: JSONWebKeySet, at: number) =>
  (await jwtVerify(token, createLocalJWKSet(jwks), { issuer: "https://id.example.test", audience: "default", typ: "at+jwt", currentDate: new Date(at) }))
    .payload;

describe("access tokens", () => {
  it("carry the session's claims, verify with the published keys, and fail once tampered with", async () => {
    const { tokens, now } = setup();
    const { token, expiresAt } = await tokens.issue(session, PLAN);
    const claims = await verify(token, await tokens.jwks(), now());
    expect(claims).toMatchObject({ sub: session.accountId, aud: "default", tenant: "default", sid: "s1", role: "ADMIN", aal: 1 });
    expect([claims.plan, claims.plan_status, claims.entitlements]).toEqual(["pro", "trialing", ["notes.read", "exports"]]);
    expect(claims.exp! * 1000).toBe(expiresAt);
    expect(claims.exp! - claims.iat!).toBe(300);
    const [h, , s] = token.split(".") as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...claims, role: "SUPER_ADMIN" })).toString("base64url");
    await expect(verify(`${h}.${forged}.${s}`, await tokens.jwks(), now())).rejects.toThrow();
    await expect(verify(token, await tokens.jwks(), expiresAt + 1000)).rejects.toThrow(/exp/);
  });

  it("rotate with overlap: the next key is published before it signs, the old one until its tokens expired", async () => {
    const { tokens, store, advance, now } = setup();
    const old = await tokens.issue(session, PLAN);
    const next = await tokens.rotate();
    expect(await kids(tokens)).toStrictEqual([old.kid, next]); // published at once…
    expect((await tokens.issue(session, PLAN)).kid).toBe(old.kid); // …but not signing yet
    advance(MINUTE);
    const fresh = await tokens.issue(session, PLAN);
    expect(fresh.kid).toBe(next);
    // During the overlap both verify against one fetch of the keys.
    const published = await tokens.jwks();
    expect((await verify(old.token, published, now())).sid).toBe("s1");
    expect((await verify(fresh.token, published, now())).sid).toBe("s1");
    // The old key stays until its last token (signed up to its retirement) expired, plus the skew.
    advance(5 * MINUTE + 59_000);
    expect(await kids(tokens)).toContain(old.kid);
    advance(2000);
    expect(await kids(tokens)).toStrictEqual([next]);
    await tokens.rotate(); // rotations also purge what is no longer published
    expect(store.rows.map((r) => r.kid)).not.toContain(old.kid);
  });

  it("rotates a key that grew old, and one sealed under a KEK no longer active; private halves are sealed", async () => {
    const k1 = { id: "k1", key: randomBytes(32) };
    const { tokens, store, advance, make } = setup([k1]);
    const first = await tokens.issue(session, PLAN);
    expect(store.rows[0]!.sealedPrivateKey.startsWith("k1.")).toBe(true);
    expect(JSON.parse(store.rows[0]!.publicJwk)).toStrictEqual({ kty: "OKP", crv: "Ed25519", x: expect.any(String) });

    advance(30 * DAY);
    expect((await tokens.issue(session, PLAN)).kid).toBe(first.kid); // starts the rotation, still signs with the old key
    await new Promise((r) => setTimeout(r, 10));
    expect(store.rows).toHaveLength(2);
    advance(MINUTE);
    const second = await tokens.issue(session, PLAN);
    expect(second.kid).not.toBe(first.kid);

    // A new KEK put first (KEK rotation): the current key is replaced by one sealed under it.
    const rotatedKek = make([{ id: "k2", key: randomBytes(32) }, k1]);
    expect((await rotatedKek.issue(session, PLAN)).kid).toBe(second.kid);
    await new Promise((r) => setTimeout(r, 10));
    advance(MINUTE);
    const third = await rotatedKek.issue(session, PLAN);
    expect(third.kid).not.toBe(second.kid);
    expect(store.rows.find((r) => r.kid === third.kid)!.sealedPrivateKey.startsWith("k2.")).toBe(true);
  });
});
