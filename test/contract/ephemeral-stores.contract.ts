// The EphemeralStores contract (src/domain/ports/), run against every
// ephemeral implementation: each *.test.ts next to this file calls
// describeEphemeralStores with a way to open a fresh, empty instance on an
// injected clock. Time-based behaviour is driven by that clock where the
// implementation uses it (the memory store, every rate limiter); stores that
// expire by real time (Redis TTLs) are given short TTLs and polled briefly.
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Invalidation, InvalidationSubscriber } from "../../src/domain/ports/invalidation.ts";
import type { PendingCode } from "../../src/domain/ports/codes.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";
import { AssuranceLevel, Role, type OneTimeToken, type SessionRecord } from "../../src/domain/types.ts";

export interface EphemeralHarness {
  stores: EphemeralStores;
  close(): Promise<void>;
  /**
   * Opens another instance sharing this one's state (another process on the
   * same Redis), to prove cross-instance delivery; absent when the state lives
   * in this process only. The harness's close() closes the peers too.
   */
  openPeer?: () => Promise<EphemeralStores>;
}

/** 2030-01-01T00:00:00Z, a whole number of minutes: rate-limit windows start on it. */
const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;

const hash = () => randomBytes(32).toString("hex");

function session(accountId: string, at: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId: randomUUID(),
    accountId,
    tenantId: "tenant-1",
    role: Role.USER,
    assurance: AssuranceLevel.AAL1,
    methods: [{ method: "password", identityId: accountId, at }],
    createdAt: at,
    lastSeenAt: at,
    expiresAt: at + HOUR,
    absoluteExpiresAt: at + 30 * 24 * HOUR,
    client: "sealed:Mozilla/5.0 (contract test) « é » 2001:db8::1",
    ...overrides,
  };
}

function token(at: number, overrides: Partial<OneTimeToken> = {}): OneTimeToken {
  return { purpose: "verify_email", tenantId: "tenant-1", accountId: randomUUID(), identityId: randomUUID(), expiresAt: at + HOUR, ...overrides };
}

const byHash = (a: { tokenHash: string }, b: { tokenHash: string }) => (a.tokenHash < b.tokenHash ? -1 : a.tokenHash > b.tokenHash ? 1 : 0);

/** Polls `check` every 20 ms until it is true or `timeoutMs` passes; returns its last answer. */
async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
}

export function describeEphemeralStores(name: string, open: (now: () => number) => Promise<EphemeralHarness>): void {
  describe(`EphemeralStores contract: ${name}`, () => {
    let t: number;
    let h: EphemeralHarness;
    let stores: EphemeralStores;

    beforeEach(async () => {
      t = T0;
      h = await open(() => t);
      stores = h.stores;
    });
    afterEach(async () => {
      await h?.close();
    });

    it("answers ping()", async () => {
      expect(await stores.ping()).toBe(true);
    });

    describe("sessions", () => {
      it("create then get returns the record; delete ends it (true, then false)", async () => {
        const accountId = randomUUID();
        const h1 = hash();
        const record = session(accountId, t);
        await stores.sessions.create(h1, record, HOUR);

        expect(await stores.sessions.get(accountId, h1)).toStrictEqual(session(accountId, t, { sessionId: record.sessionId }));
        expect(await stores.sessions.get(accountId, hash())).toBeUndefined();
        expect(await stores.sessions.get(randomUUID(), h1)).toBeUndefined();

        expect(await stores.sessions.delete(accountId, h1)).toBe(true);
        expect(await stores.sessions.get(accountId, h1)).toBeUndefined();
        expect(await stores.sessions.delete(accountId, h1)).toBe(false);
        expect(await stores.sessions.delete(accountId, hash())).toBe(false);
        expect(await stores.sessions.listForAccount(accountId)).toStrictEqual([]);
      });

      it("keeps its own copy: changing the record after create, or a returned record, changes nothing stored", async () => {
        const accountId = randomUUID();
        const h1 = hash();
        const record = session(accountId, t);
        const expected = structuredClone(record);
        await stores.sessions.create(h1, record, HOUR);
        record.role = Role.SUPER_ADMIN;
        const got = await stores.sessions.get(accountId, h1);
        got!.lastSeenAt = 0;
        expect(await stores.sessions.get(accountId, h1)).toStrictEqual(expected);
      });

      it("delete ends only the given session", async () => {
        const accountId = randomUUID();
        const [h1, h2] = [hash(), hash()];
        const s2 = session(accountId, t);
        await stores.sessions.create(h1, session(accountId, t), HOUR);
        await stores.sessions.create(h2, s2, HOUR);
        expect(await stores.sessions.delete(accountId, h1)).toBe(true);
        expect(await stores.sessions.get(accountId, h2)).toStrictEqual(s2);
        expect(await stores.sessions.listForAccount(accountId)).toStrictEqual([{ tokenHash: h2, session: s2 }]);
      });

      it("listForAccount lists the account's live sessions with their hashes, and no one else's", async () => {
        const [alice, bob] = [randomUUID(), randomUUID()];
        const mine = [hash(), hash(), hash()].map((tokenHash) => ({ tokenHash, session: session(alice, t) }));
        const bobs = { tokenHash: hash(), session: session(bob, t) };
        for (const s of [...mine, bobs]) await stores.sessions.create(s.tokenHash, s.session, HOUR);

        expect((await stores.sessions.listForAccount(alice)).sort(byHash)).toStrictEqual([...mine].sort(byHash));
        expect(await stores.sessions.listForAccount(bob)).toStrictEqual([bobs]);
        expect(await stores.sessions.listForAccount(randomUUID())).toStrictEqual([]);
      });

      it("deleteAllForAccount ends every session of the account and returns their hashes; other accounts keep theirs", async () => {
        const [alice, bob] = [randomUUID(), randomUUID()];
        const mine = [hash(), hash(), hash()];
        const gone = hash();
        const bobs = hash();
        const bobSession = session(bob, t);
        for (const h1 of [...mine, gone]) await stores.sessions.create(h1, session(alice, t), HOUR);
        await stores.sessions.create(bobs, bobSession, HOUR);
        await stores.sessions.delete(alice, gone); // already ended: not reported again

        expect((await stores.sessions.deleteAllForAccount(alice)).sort()).toStrictEqual([...mine].sort());
        for (const h1 of mine) expect(await stores.sessions.get(alice, h1)).toBeUndefined();
        expect(await stores.sessions.listForAccount(alice)).toStrictEqual([]);
        expect(await stores.sessions.deleteAllForAccount(alice)).toStrictEqual([]);

        expect(await stores.sessions.get(bob, bobs)).toStrictEqual(bobSession);
        expect(await stores.sessions.listForAccount(bob)).toStrictEqual([{ tokenHash: bobs, session: bobSession }]);
      });

      it("deleteAllForAccount with a kept hash ends the others and keeps that one", async () => {
        const alice = randomUUID();
        const [keep, a, b] = [hash(), hash(), hash()];
        const kept = session(alice, t);
        await stores.sessions.create(keep, kept, HOUR);
        await stores.sessions.create(a, session(alice, t), HOUR);
        await stores.sessions.create(b, session(alice, t), HOUR);

        expect((await stores.sessions.deleteAllForAccount(alice, keep)).sort()).toStrictEqual([a, b].sort());
        expect(await stores.sessions.get(alice, keep)).toStrictEqual(kept);
        expect(await stores.sessions.get(alice, a)).toBeUndefined();
        expect(await stores.sessions.get(alice, b)).toBeUndefined();
        expect(await stores.sessions.listForAccount(alice)).toStrictEqual([{ tokenHash: keep, session: kept }]);
        expect(await stores.sessions.deleteAllForAccount(alice, keep)).toStrictEqual([]);
        // Without the kept hash, the kept one goes too.
        expect(await stores.sessions.deleteAllForAccount(alice)).toStrictEqual([keep]);
      });

      it("touch replaces a live session's record and TTL (the index lives as long); it never brings back an ended, expired or unknown session", async () => {
        const alice = randomUUID();
        const [live, ended, expiring, unknown] = [hash(), hash(), hash(), hash()];
        const original = session(alice, t);
        // All with a short TTL, so the account's index (Redis) would expire with them unless touch extends it.
        await stores.sessions.create(live, original, 300);
        await stores.sessions.create(ended, session(alice, t), 300);
        await stores.sessions.create(expiring, session(alice, t), 300);
        await stores.sessions.delete(alice, ended);

        const refreshed = { ...original, lastSeenAt: t + 100, expiresAt: t + 100 + HOUR };
        expect(await stores.sessions.touch(alice, live, refreshed, HOUR)).toBe(true);
        expect(await stores.sessions.get(alice, live)).toStrictEqual(refreshed);
        expect(await stores.sessions.touch(alice, ended, refreshed, HOUR)).toBe(false);
        expect(await stores.sessions.touch(alice, unknown, refreshed, HOUR)).toBe(false);
        expect(await stores.sessions.touch(randomUUID(), live, refreshed, HOUR)).toBe(false);
        expect(await stores.sessions.get(alice, ended)).toBeUndefined();
        expect(await stores.sessions.get(alice, unknown)).toBeUndefined();

        // Past the first TTL: the touched session (and the account's index) lives on, the other expired.
        t += 500;
        expect(await eventually(async () => (await stores.sessions.get(alice, expiring)) === undefined)).toBe(true);
        expect(await stores.sessions.touch(alice, expiring, refreshed, HOUR)).toBe(false);
        expect(await stores.sessions.get(alice, expiring)).toBeUndefined();
        expect(await stores.sessions.get(alice, live)).toStrictEqual(refreshed);
        expect(await stores.sessions.listForAccount(alice)).toStrictEqual([{ tokenHash: live, session: refreshed }]);

        // The TTL is replaced, not only extended: a shorter one takes effect.
        expect(await stores.sessions.touch(alice, live, refreshed, 300)).toBe(true);
        t += 500;
        expect(await eventually(async () => (await stores.sessions.get(alice, live)) === undefined)).toBe(true);
        expect(await stores.sessions.listForAccount(alice)).toStrictEqual([]);
      });

      it("touch keeps its own copy of the record", async () => {
        const alice = randomUUID();
        const h1 = hash();
        await stores.sessions.create(h1, session(alice, t), HOUR);
        const refreshed = session(alice, t, { lastSeenAt: t + 1 });
        const expected = structuredClone(refreshed);
        await stores.sessions.touch(alice, h1, refreshed, HOUR);
        refreshed.role = Role.SUPER_ADMIN;
        expect(await stores.sessions.get(alice, h1)).toStrictEqual(expected);
      });
    });

    describe("tokens", () => {
      it("peek returns the token without using it; take returns it once, then undefined", async () => {
        const h1 = hash();
        const tok = token(t, { purpose: "reset_password" });
        await stores.tokens.put(h1, tok, HOUR);

        expect(await stores.tokens.peek(h1)).toStrictEqual(tok);
        expect(await stores.tokens.peek(h1)).toStrictEqual(tok);
        expect(await stores.tokens.take(h1)).toStrictEqual(tok);
        expect(await stores.tokens.take(h1)).toBeUndefined();
        expect(await stores.tokens.peek(h1)).toBeUndefined();
        expect(await stores.tokens.take(hash())).toBeUndefined();
        expect(await stores.tokens.peek(hash())).toBeUndefined();
      });

      it("tokens are independent of each other", async () => {
        const [h1, h2] = [hash(), hash()];
        const [t1, t2] = [token(t), token(t, { purpose: "invitation" })];
        await stores.tokens.put(h1, t1, HOUR);
        await stores.tokens.put(h2, t2, HOUR);
        expect(await stores.tokens.take(h1)).toStrictEqual(t1);
        expect(await stores.tokens.peek(h2)).toStrictEqual(t2);
      });

      it("twenty concurrent takes of one token: exactly one gets it", async () => {
        const h1 = hash();
        const tok = token(t);
        await stores.tokens.put(h1, tok, HOUR);
        const results = await Promise.all(Array.from({ length: 20 }, () => stores.tokens.take(h1)));
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toStrictEqual([tok]);
        expect(await stores.tokens.peek(h1)).toBeUndefined();
      });
    });

    describe("codes", () => {
      const pending = (overrides: Partial<PendingCode> = {}): PendingCode => ({
        codeHash: hash(),
        tenantId: "tenant-1",
        accountId: "",
        expiresAt: t + 5 * 60_000,
        ...overrides,
      });

      it("the right code matches once (single use); nothing pending answers none", async () => {
        const key = `sign_in:${hash()}`;
        const code = pending({ accountId: randomUUID() });
        await stores.codes.put(key, code, HOUR);
        expect(await stores.codes.attempt(key, code.codeHash, 5)).toStrictEqual({ outcome: "match", code });
        expect(await stores.codes.attempt(key, code.codeHash, 5)).toStrictEqual({ outcome: "none" });
        expect(await stores.codes.attempt(`sign_in:${hash()}`, code.codeHash, 5)).toStrictEqual({ outcome: "none" });
      });

      it("wrong codes count down the attempts; the last one deletes the code, even the right one then answers none", async () => {
        const key = `sign_in:${hash()}`;
        const code = pending();
        await stores.codes.put(key, code, HOUR);
        expect(await stores.codes.attempt(key, hash(), 3)).toStrictEqual({ outcome: "mismatch", attemptsLeft: 2 });
        expect(await stores.codes.attempt(key, hash(), 3)).toStrictEqual({ outcome: "mismatch", attemptsLeft: 1 });
        expect(await stores.codes.attempt(key, hash(), 3)).toStrictEqual({ outcome: "mismatch", attemptsLeft: 0 });
        expect(await stores.codes.attempt(key, code.codeHash, 3)).toStrictEqual({ outcome: "none" });
      });

      it("a new code replaces the pending one and its attempt count; codes under other keys are independent", async () => {
        const [key, other] = [`sign_in:${hash()}`, `add_phone:${hash()}`];
        const [first, second, third] = [pending(), pending(), pending()];
        await stores.codes.put(key, first, HOUR);
        await stores.codes.put(other, third, HOUR);
        expect(await stores.codes.attempt(key, hash(), 2)).toStrictEqual({ outcome: "mismatch", attemptsLeft: 1 });
        await stores.codes.put(key, second, HOUR);
        expect(await stores.codes.attempt(key, first.codeHash, 2)).toStrictEqual({ outcome: "mismatch", attemptsLeft: 1 });
        expect(await stores.codes.attempt(key, second.codeHash, 2)).toStrictEqual({ outcome: "match", code: second });
        expect(await stores.codes.attempt(other, third.codeHash, 2)).toStrictEqual({ outcome: "match", code: third });
      });

      it("of twenty concurrent attempts with the right code exactly one matches; of twenty wrong ones at most the limit count", async () => {
        const key = `sign_in:${hash()}`;
        const code = pending();
        await stores.codes.put(key, code, HOUR);
        const results = await Promise.all(Array.from({ length: 20 }, () => stores.codes.attempt(key, code.codeHash, 5)));
        expect(results.filter((r) => r.outcome === "match")).toHaveLength(1);
        expect(results.filter((r) => r.outcome === "none")).toHaveLength(19);

        const guessed = `sign_in:${hash()}`;
        await stores.codes.put(guessed, code, HOUR);
        const guesses = await Promise.all(Array.from({ length: 20 }, () => stores.codes.attempt(guessed, hash(), 5)));
        expect(guesses.filter((r) => r.outcome === "mismatch")).toHaveLength(5);
        expect(await stores.codes.attempt(guessed, code.codeHash, 5)).toStrictEqual({ outcome: "none" });
      });

      it("disappears once its TTL passes", async () => {
        const [short, long] = [`sign_in:${hash()}`, `sign_in:${hash()}`];
        const [a, b] = [pending(), pending()];
        await stores.codes.put(short, a, 300);
        await stores.codes.put(long, b, HOUR);
        t += 500;
        // Polled with a wrong code (a mismatch while it lives), generous attempts so polling never uses it up.
        expect(await eventually(async () => (await stores.codes.attempt(short, hash(), 1_000_000)).outcome === "none")).toBe(true);
        expect(await stores.codes.attempt(long, b.codeHash, 5)).toStrictEqual({ outcome: "match", code: b });
      });
    });

    it("sessions and tokens disappear once their TTL passes, longer-lived ones stay", async () => {
      // Two accounts, so listing and ending all sessions each meet an expired session first.
      const [alice, bob] = [randomUUID(), randomUUID()];
      const [aliceShort, aliceLong, bobShort, bobLong, shortToken, longToken] = [hash(), hash(), hash(), hash(), hash(), hash()];
      const aliceKept = session(alice, t);
      const bobKept = session(bob, t);
      const keptToken = token(t);
      await stores.sessions.create(aliceShort, session(alice, t), 300);
      await stores.sessions.create(aliceLong, aliceKept, HOUR);
      await stores.sessions.create(bobShort, session(bob, t), 300);
      await stores.sessions.create(bobLong, bobKept, HOUR);
      await stores.tokens.put(shortToken, token(t), 300);
      await stores.tokens.put(longToken, keptToken, HOUR);

      // Alive before the TTL passes.
      expect(await stores.sessions.get(alice, aliceShort)).toBeDefined();
      expect(await stores.tokens.peek(shortToken)).toBeDefined();

      // Clock-driven stores expire at once; real-time ones (Redis) within a few hundred ms.
      // Only the token (stored last, so expiring last) is polled: the sessions' first
      // look after expiry must be the listing below.
      t += 500;
      expect(await eventually(async () => (await stores.tokens.peek(shortToken)) === undefined)).toBe(true);

      expect(await stores.sessions.listForAccount(alice)).toStrictEqual([{ tokenHash: aliceLong, session: aliceKept }]);
      // An expired session is not reported as ended by deleteAllForAccount.
      expect(await stores.sessions.deleteAllForAccount(bob)).toStrictEqual([bobLong]);
      expect(await stores.sessions.get(bob, bobShort)).toBeUndefined();
      expect(await stores.sessions.get(alice, aliceShort)).toBeUndefined();
      expect(await stores.sessions.delete(alice, aliceShort)).toBe(false);
      expect(await stores.sessions.get(alice, aliceLong)).toStrictEqual(aliceKept);
      expect(await stores.tokens.take(shortToken)).toBeUndefined();
      expect(await stores.tokens.peek(longToken)).toStrictEqual(keptToken);
      expect(await stores.tokens.take(longToken)).toStrictEqual(keptToken);
    });

    describe("rate limiter", () => {
      const WINDOW = 60_000;
      /** One counter: a group's own, one window. */
      const consume = async (key: string, limit: number, windowMs: number) => (await stores.rateLimiter.hit(key, [{ field: "", limit, windowMs }]))[0]!;

      it("allows `limit` attempts in a window, then refuses with the time until the window ends", async () => {
        const key = `ip:${randomUUID()}`;
        t = T0 + 10_000;
        for (let i = 0; i < 3; i++) expect(await consume(key, 3, WINDOW)).toStrictEqual({ allowed: true, retryAfterMs: 0 });

        const refused = await consume(key, 3, WINDOW);
        expect(refused.allowed).toBe(false);
        expect(refused.retryAfterMs).toBeGreaterThan(0);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(WINDOW);

        // Still refused just before the announced time, whatever the attempts in between...
        t += 1000;
        const later = await consume(key, 3, WINDOW);
        expect(later).toStrictEqual({ allowed: false, retryAfterMs: refused.retryAfterMs - 1000 });
        t = T0 + 10_000 + refused.retryAfterMs - 1;
        expect((await consume(key, 3, WINDOW)).allowed).toBe(false);

        // ...and allowed again once it has come: a fresh window of `limit` attempts.
        t = T0 + 10_000 + refused.retryAfterMs;
        for (let i = 0; i < 3; i++) expect(await consume(key, 3, WINDOW)).toStrictEqual({ allowed: true, retryAfterMs: 0 });
        expect((await consume(key, 3, WINDOW)).allowed).toBe(false);
      });

      it("windows are fixed: the retry time is the end of the current window", async () => {
        const key = `ip:${randomUUID()}`;
        t = T0 + 59_000;
        expect((await consume(key, 1, WINDOW)).allowed).toBe(true);
        expect(await consume(key, 1, WINDOW)).toStrictEqual({ allowed: false, retryAfterMs: 1000 });
        t = T0 + WINDOW;
        expect(await consume(key, 1, WINDOW)).toStrictEqual({ allowed: true, retryAfterMs: 0 });
      });

      it("keys are independent", async () => {
        const [a, b] = [`account:${randomUUID()}`, `account:${randomUUID()}`];
        expect((await consume(a, 1, WINDOW)).allowed).toBe(true);
        expect((await consume(a, 1, WINDOW)).allowed).toBe(false);
        expect(await consume(b, 1, WINDOW)).toStrictEqual({ allowed: true, retryAfterMs: 0 });
        expect((await consume(b, 1, WINDOW)).allowed).toBe(false);
      });

      it("counts concurrent attempts exactly", async () => {
        const key = `ip:${randomUUID()}`;
        const results = await Promise.all(Array.from({ length: 20 }, () => consume(key, 5, WINDOW)));
        expect(results.filter((r) => r.allowed)).toHaveLength(5);
      });

      it("hit counts every counter of a group at once, each against its own limit and window", async () => {
        const group = `t1:sign_in_account:${randomUUID()}`;
        t = T0 + 59_000;
        const counters = [
          { field: "ip:2001:db8::1", limit: 1, windowMs: WINDOW },
          { field: "", limit: 2, windowMs: WINDOW },
          { field: "", limit: 3, windowMs: HOUR },
        ];
        const ok = { allowed: true, retryAfterMs: 0 };
        expect(await stores.rateLimiter.hit(group, counters)).toStrictEqual([ok, ok, ok]);
        expect(await stores.rateLimiter.hit(group, counters)).toStrictEqual([{ allowed: false, retryAfterMs: 1000 }, ok, ok]);
        // Another field of the group counts apart; the group's own counters go on.
        const other = [{ ...counters[0]!, field: "ip:192.0.2.1" }, counters[1]!, counters[2]!];
        expect(await stores.rateLimiter.hit(group, other)).toStrictEqual([ok, { allowed: false, retryAfterMs: 1000 }, ok]);
        // A new minute: the minute's counters start afresh, the hour's go on.
        t = T0 + WINDOW;
        expect(await stores.rateLimiter.hit(group, counters)).toStrictEqual([ok, ok, { allowed: false, retryAfterMs: HOUR - WINDOW }]);
        // Another group is another set of counters.
        expect(await stores.rateLimiter.hit(`t2:sign_in_account:${randomUUID()}`, counters)).toStrictEqual([ok, ok, ok]);
      });

      it("reset forgets every field of a group in the current windows, and no other group's", async () => {
        const [group, bystander] = [`t1:sign_in_account:${randomUUID()}`, `t1:sign_in_account:${randomUUID()}`];
        t = T0 + 10_000;
        const counters = [
          { field: "ip:198.51.100.1", limit: 1, windowMs: WINDOW },
          { field: "", limit: 1, windowMs: HOUR },
        ];
        for (const g of [group, bystander]) await stores.rateLimiter.hit(g, counters);
        expect((await stores.rateLimiter.hit(group, counters)).map((r) => r.allowed)).toEqual([false, false]);
        await stores.rateLimiter.reset(group, [WINDOW, HOUR]);
        expect((await stores.rateLimiter.hit(group, counters)).map((r) => r.allowed)).toEqual([true, true]);
        expect((await stores.rateLimiter.hit(bystander, counters)).map((r) => r.allowed)).toEqual([false, false]);
      });

      it("refund takes back one count on each counter in the windows of `at`, floored at 0, and creates nothing", async () => {
        const group = `t1:sign_in_account:${randomUUID()}`;
        const counters = [
          { field: "src:192.0.2.1", limit: 2, windowMs: WINDOW },
          { field: "", limit: 100, windowMs: HOUR },
        ];
        const minute = async (at?: number) => (await stores.rateLimiter.hit(group, counters, at))[0]!.allowed;
        t = T0 + WINDOW - 1;
        const at = stores.rateLimiter.now();
        expect(at).toBe(t);
        await stores.rateLimiter.hit(group, counters, at);
        // A window boundary between hit and refund: the refund is for the minute that was
        // counted (ended, nothing left to take back), never for the new one.
        t = T0 + WINDOW;
        expect([await minute(), await minute()]).toEqual([true, true]);
        await stores.rateLimiter.refund(group, counters, at);
        expect(await minute()).toBe(false);
        // Floored at 0: refunds beyond the count take back nothing more, nor do they create a counter.
        const fresh = `t1:sign_in_ip:${randomUUID()}`;
        counters[1] = { ...counters[1]!, limit: 2 };
        for (let i = 0; i < 3; i++) await stores.rateLimiter.refund(fresh, counters, t);
        expect((await stores.rateLimiter.hit(fresh, counters)).map((r) => r.allowed)).toEqual([true, true]);
        expect((await stores.rateLimiter.hit(fresh, counters)).map((r) => r.allowed)).toEqual([true, true]);
        expect((await stores.rateLimiter.hit(fresh, counters)).map((r) => r.allowed)).toEqual([false, false]);
        await stores.rateLimiter.refund(fresh, counters, t);
        for (let i = 0; i < 5; i++) await stores.rateLimiter.refund(fresh, counters, t);
        expect((await stores.rateLimiter.hit(fresh, counters)).map((r) => r.allowed)).toEqual([true, true]);
      });

      it("counts concurrent hits on a group exactly", async () => {
        const group = `t1:code_ip:${randomUUID()}`;
        const counters = [
          { field: "", limit: 5, windowMs: WINDOW },
          { field: "", limit: 8, windowMs: HOUR },
        ];
        const results = await Promise.all(Array.from({ length: 20 }, () => stores.rateLimiter.hit(group, counters)));
        expect(results.filter(([minute]) => minute!.allowed)).toHaveLength(5);
        expect(results.filter(([, hour]) => hour!.allowed)).toHaveLength(8);
      });
    });

    describe("invalidation bus", () => {
      /** A subscriber recording what it hears: messages, and the subscription going down or up. */
      function recorder() {
        const heard: Invalidation[][] = [];
        const states: boolean[] = [];
        const subscriber: InvalidationSubscriber = { invalidate: (messages) => heard.push([...messages]), subscribed: (up) => states.push(up) };
        return { heard, states, subscriber };
      }

      it("delivers published messages to subscribers (on another instance when state is shared)", async () => {
        const subscriberSide = h.openPeer ? await h.openPeer() : stores;
        const { heard: received, subscriber } = recorder();
        await subscriberSide.invalidation.subscribe(subscriber);
        // A bus may also say "forget everything" (e.g. after reconnecting): consumers handle it.
        const delivered = () => received.filter((messages) => !(messages.length === 1 && messages[0]!.kind === "all"));

        const [h1, h2, h3] = [hash(), hash(), hash()];
        const account = randomUUID();
        await stores.invalidation.publish([{ kind: "session", tokenHashes: [h1, h2] }]);
        await stores.invalidation.publish([]); // nothing to say: nothing delivered
        await stores.invalidation.publish([
          { kind: "session", tokenHashes: [h3] },
          { kind: "account", accountId: account },
        ]);
        await stores.invalidation.publish([
          { kind: "tenant", tenantId: "tenant-1" },
          { kind: "apiKey", secretHash: h1 },
        ]);

        expect(await eventually(() => delivered().length >= 3)).toBe(true);
        await sleep(50); // anything extra (the empty publish) would have arrived by now
        // Invalidations commute, and a Redis Cluster may relay two publishes through
        // different nodes: each message arrives whole and once, in no promised order.
        const byText = (messages: unknown[]) => JSON.stringify(messages);
        expect(delivered().sort((a, b) => byText(a).localeCompare(byText(b)))).toStrictEqual(
          [
            [{ kind: "session", tokenHashes: [h1, h2] }],
            [
              { kind: "session", tokenHashes: [h3] },
              { kind: "account", accountId: account },
            ],
            [
              { kind: "tenant", tenantId: "tenant-1" },
              { kind: "apiKey", secretHash: h1 },
            ],
          ].sort((a, b) => byText(a).localeCompare(byText(b))),
        );
      });

      it("delivers to every subscriber", async () => {
        const first = recorder();
        const second = recorder();
        await stores.invalidation.subscribe(first.subscriber);
        const other = h.openPeer ? await h.openPeer() : stores;
        await other.invalidation.subscribe(second.subscriber);
        const h1 = hash();
        await other.invalidation.publish([{ kind: "session", tokenHashes: [h1] }]);
        const got = (list: Invalidation[][]) =>
          list.some((messages) => messages.length === 1 && messages[0]!.kind === "session" && messages[0]!.tokenHashes[0] === h1);
        expect(await eventually(() => got(first.heard) && got(second.heard))).toBe(true);
      });

      it("a healthy subscription is not reported down", async () => {
        const { states, subscriber } = recorder();
        await stores.invalidation.subscribe(subscriber);
        await sleep(100);
        expect(states.filter((up) => !up)).toStrictEqual([]);
      });
    });

    describe("leases", () => {
      const name = () => `job-${randomUUID()}`;

      it("one holder at a time, until it releases", async () => {
        const job = name();
        const other = h.openPeer ? await h.openPeer() : stores;
        const held = await stores.leases.acquire(job, HOUR);
        expect(held).toBeDefined();
        expect(await other.leases.acquire(job, HOUR)).toBeUndefined();
        expect(await stores.leases.acquire(job, HOUR)).toBeUndefined();
        expect(await held!.release()).toBe(true);
        const next = await other.leases.acquire(job, HOUR);
        expect(next).toBeDefined();
        expect(await held!.release()).toBe(false); // no longer ours: the new holder keeps it
        expect(await stores.leases.acquire(job, HOUR)).toBeUndefined();
      });

      it("leases are independent by name", async () => {
        expect(await stores.leases.acquire(name(), HOUR)).toBeDefined();
        expect(await stores.leases.acquire(name(), HOUR)).toBeDefined();
      });

      it("concurrent acquires: exactly one wins", async () => {
        const job = name();
        const results = await Promise.all(Array.from({ length: 10 }, () => stores.leases.acquire(job, HOUR)));
        expect(results.filter((r) => r !== undefined)).toHaveLength(1);
      });

      it("lapses after its TTL; extend keeps it, but only for its holder", async () => {
        const job = name();
        const held = await stores.leases.acquire(job, 300);
        expect(held).toBeDefined();
        t += 200;
        await sleep(200);
        expect(await held!.extend(600)).toBe(true);
        t += 200;
        await sleep(200); // past the first TTL, within the extended one
        expect(await stores.leases.acquire(job, HOUR)).toBeUndefined();
        t += 600;
        expect(await eventually(async () => (await stores.leases.acquire(job, HOUR)) !== undefined)).toBe(true);
        expect(await held!.extend(HOUR)).toBe(false); // lapsed and taken: extending must not steal it back
        expect(await held!.release()).toBe(false);
        expect(await stores.leases.acquire(job, HOUR)).toBeUndefined();
      });
    });
  });
}
