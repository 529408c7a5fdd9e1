import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashSecret } from "../../src/crypto/keyring.ts";
import { DomainError } from "../../src/domain/errors.ts";
import { isId, newId } from "../../src/domain/ids.ts";
import type { SessionStore } from "../../src/domain/ports/sessions.ts";
import {
  createSessions,
  openSessionClient,
  SESSION_USER_AGENT_MAX,
  type SessionCacheOptions,
  type Sessions,
  type ValidSession,
} from "../../src/domain/sessions.ts";
import { DEFAULT_TENANT_ID, DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { AccountState, AssuranceLevel, Role, type Account, type SessionRecord, type TenantSettings } from "../../src/domain/types.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";
import type { Invalidation, InvalidationBus, InvalidationSubscriber } from "../../src/domain/ports/invalidation.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";

/** The account data key sessions seal their client under, in these tests. */
const TEST_DATA_KEY = Buffer.alloc(32, 7);
const METHODS = [{ method: "password", identityId: "0191f0b2-7a4c-7c3e-9d1a-3b5f2c1e4a70" }];
const START = Date.UTC(2025, 0, 15, 12, 0, 0);
const SECOND = 1000;
const HOUR = 3_600_000;
const META = { ip: "203.0.113.7", userAgent: "vitest/4" };

let clock = START;
const now = () => clock;
let stores: EphemeralStores;

beforeEach(() => {
  clock = START;
  stores = createMemoryStores({ now });
});

afterEach(async () => {
  await stores.close();
});

function account(overrides: Partial<Account> = {}): Account {
  return {
    id: newId(clock),
    tenantId: DEFAULT_TENANT_ID,
    role: Role.USER,
    state: AccountState.ACTIVE,
    locale: "en",
    emailVerified: true,
    profile: { email: "ann@example.com", displayName: "Ann", pronouns: "", customAttributes: {}, pushTokens: [] },
    plan: "free",
    planExpiresAt: null,
    planStatus: 0,
    planRenews: false,
    createdAt: clock,
    updatedAt: clock,
    ...overrides,
  };
}

function settings(overrides: Partial<TenantSettings> = {}): TenantSettings {
  return { ...DEFAULT_TENANT_SETTINGS, ...overrides };
}

function sessions(cache?: SessionCacheOptions, on: EphemeralStores = stores): Sessions {
  return createSessions({ dataKey: async () => TEST_DATA_KEY, store: on.sessions, invalidation: on.invalidation, now, cache });
}

/** validate()'s answer as a promise, whether the cache answered synchronously or not. */
const settle = <T>(answer: T | Promise<T>): Promise<T> => Promise.resolve(answer);

/** What validate answers synchronously, from the cache with no I/O; undefined when it had to ask the store. */
function cachedAnswer(s: Sessions, token: string): ValidSession | undefined {
  const answer = s.validate(token);
  if (!(answer instanceof Promise)) return answer;
  answer.catch(() => {});
  return undefined;
}

async function expectUnauthenticated(promise: unknown): Promise<DomainError> {
  const error = await Promise.resolve(promise).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).kind).toBe("unauthenticated");
  return error as DomainError;
}

describe("issue", () => {
  it('returns a token "<accountId>.<43 chars>" and the session record', async () => {
    const s = sessions();
    const acct = account({ role: Role.ADMIN });
    const { token, session } = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const [prefix, secret, ...rest] = token.split(".");
    expect(rest).toEqual([]);
    expect(prefix).toBe(acct.id);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session).toMatchObject({
      accountId: acct.id,
      tenantId: DEFAULT_TENANT_ID,
      role: Role.ADMIN,
      assurance: AssuranceLevel.AAL1,
      createdAt: START,
      lastSeenAt: START,
      client: expect.any(String),
    });
    expect(openSessionClient(TEST_DATA_KEY, session)).toEqual(META);
    expect(isId(session.sessionId)).toBe(true);
  });

  it("records the authentication methods in order: one without a time completed at the session's creation", async () => {
    const { session } = await sessions().issue(account(), settings(), META, AssuranceLevel.AAL2, TEST_DATA_KEY, [
      { method: "phone_code", identityId: "i-1", at: START - 5 },
      { method: "totp", identityId: "" },
    ]);
    expect(session.methods).toStrictEqual([
      { method: "phone_code", identityId: "i-1", at: START - 5 },
      { method: "totp", identityId: "", at: START },
    ]);
  });

  it("stores only the token hash", async () => {
    const s = sessions();
    const acct = account();
    const { token, session } = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(await stores.sessions.get(acct.id, hashSecret(token))).toEqual(session);
    expect(await stores.sessions.get(acct.id, token)).toBeUndefined();
  });

  it("issues a different token each time", async () => {
    const s = sessions();
    const acct = account();
    const a = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const b = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(a.token).not.toBe(b.token);
    expect(a.session.sessionId).not.toBe(b.session.sessionId);
  });

  it("expires at now + idle timeout when that comes first", async () => {
    const { session } = await sessions().issue(
      account(),
      settings({ sessionIdleTimeoutMs: HOUR, sessionAbsoluteLifetimeMs: 30 * 24 * HOUR }),
      META,
      AssuranceLevel.AAL1,
      TEST_DATA_KEY,
      METHODS,
    );
    expect(session.expiresAt).toBe(START + HOUR);
    expect(session.absoluteExpiresAt).toBe(START + 30 * 24 * HOUR);
  });

  it("expires at now + absolute lifetime when that comes first", async () => {
    const { session } = await sessions().issue(
      account(),
      settings({ sessionIdleTimeoutMs: 2 * HOUR, sessionAbsoluteLifetimeMs: HOUR }),
      META,
      AssuranceLevel.AAL2,
      TEST_DATA_KEY,
      METHODS,
    );
    expect(session.expiresAt).toBe(START + HOUR);
    expect(session.absoluteExpiresAt).toBe(START + HOUR);
    expect(session.assurance).toBe(AssuranceLevel.AAL2);
  });

  it("uses the default tenant settings (24 h idle, 30 d absolute)", async () => {
    const { session } = await sessions().issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(session.expiresAt).toBe(START + Math.min(DEFAULT_TENANT_SETTINGS.sessionIdleTimeoutMs, DEFAULT_TENANT_SETTINGS.sessionAbsoluteLifetimeMs));
  });

  it(`caps a long user agent at ${SESSION_USER_AGENT_MAX} characters`, async () => {
    const { session } = await sessions().issue(account(), settings(), { ip: "::1", userAgent: "x".repeat(1000) }, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(openSessionClient(TEST_DATA_KEY, session).userAgent).toHaveLength(SESSION_USER_AGENT_MAX);
  });

  it("keeps where a session was opened sealed under the account's data key, and lists it opened", async () => {
    const s = sessions();
    const meta = { ip: "2001:db8:85a3::8a2e:370:7334", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0" };
    const { token, session } = await s.issue(account(), settings(), meta, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(JSON.stringify(session)).not.toContain(meta.ip);
    expect(JSON.stringify(session)).not.toContain("Firefox");
    expect(openSessionClient(Buffer.alloc(32, 8), session)).toEqual({ ip: "", userAgent: "" }); // another key opens nothing
    const [listed] = await s.list(session.accountId);
    expect(listed?.client).toEqual(meta);
    // Validation hands back the record as stored: nothing is opened on the hot path.
    expect((await s.validate(token)).session.client).toBe(session.client);
  });
});

describe("validate", () => {
  it("returns the session and its token hash", async () => {
    const s = sessions();
    const { token, session } = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const valid = await s.validate(token);
    expect(valid.session).toEqual(session);
    expect(valid.tokenHash).toBe(hashSecret(token));
  });

  it("validate answers from the cache (synchronously) only after a first validate", async () => {
    const s = sessions();
    const { token, session } = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(cachedAnswer(s, token)).toBeUndefined();
    await s.validate(token);
    expect(cachedAnswer(s, token)).toEqual({ tokenHash: hashSecret(token), session });
  });

  it("rejects an unknown well-formed token", async () => {
    const s = sessions();
    const { token } = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const other = `${token.slice(0, 37)}${"A".repeat(43)}`;
    const error = await expectUnauthenticated(s.validate(other));
    expect(error.reason).toBe("SESSION_INVALID");
  });

  it("rejects a token whose account prefix was swapped", async () => {
    const s = sessions();
    const { token } = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await expectUnauthenticated(s.validate(`${newId(clock)}${token.slice(36)}`));
  });

  describe("malformed tokens", () => {
    const id = "0190a8b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b";
    const secret = "A".repeat(43);
    it.each([
      ["empty", ""],
      ["secret too short", `${id}.${secret.slice(1)}`],
      ["secret too long", `${id}.${secret}A`],
      ["no dot", `${id}${secret}A`],
      ["dot in the wrong place", `${id.slice(1)}.${secret}A`],
      ["non-uuid account", `${"z".repeat(36)}.${secret}`],
      ["upper-case uuid", `${id.toUpperCase()}.${secret}`],
      ["secret only", secret],
    ])("%s → unauthenticated without a store lookup", async (_name, token) => {
      let lookups = 0;
      const store: SessionStore = {
        ...stores.sessions,
        get: (accountId, tokenHash) => {
          lookups++;
          return stores.sessions.get(accountId, tokenHash);
        },
      };
      const s = createSessions({ dataKey: async () => TEST_DATA_KEY, store, invalidation: stores.invalidation, now });
      const error = await expectUnauthenticated(s.validate(token));
      expect(error.reason).toBe("SESSION_INVALID");
      expect(cachedAnswer(s, token)).toBeUndefined();
      expect(lookups).toBe(0);
    });
  });
});

describe("end / endAll", () => {
  it("end makes validate fail, in this instance and from the store", async () => {
    const s = sessions();
    const acct = account();
    const { token } = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(token);
    await s.end(token);
    expect(cachedAnswer(s, token)).toBeUndefined();
    await expectUnauthenticated(s.validate(token));
    expect(await stores.sessions.get(acct.id, hashSecret(token))).toBeUndefined();
  });

  it("end is idempotent and ignores malformed tokens", async () => {
    const s = sessions();
    const { token } = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.end(token);
    await expect(s.end(token)).resolves.toBeUndefined();
    await expect(s.end("garbage")).resolves.toBeUndefined();
  });

  it("end leaves the account's other sessions alone", async () => {
    const s = sessions();
    const acct = account();
    const a = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const b = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.end(a.token);
    await expect(settle(s.validate(b.token))).resolves.toMatchObject({ session: b.session });
  });

  it("endAll ends the other sessions only and returns the count", async () => {
    const s = sessions();
    const acct = account();
    const other = account();
    const issued = [];
    for (let i = 0; i < 4; i++) issued.push(await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS));
    const bystander = await s.issue(other, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    for (const { token } of issued) await s.validate(token); // cached too
    const [keep, ...rest] = issued;
    if (!keep) throw new Error("unreachable");

    expect(await s.endAll(acct.id, hashSecret(keep.token))).toBe(3);

    await expect(settle(s.validate(keep.token))).resolves.toMatchObject({ session: keep.session });
    for (const { token } of rest) {
      expect(cachedAnswer(s, token)).toBeUndefined();
      await expectUnauthenticated(s.validate(token));
    }
    await expect(settle(s.validate(bystander.token))).resolves.toMatchObject({ session: bystander.session });
    expect(await s.endAll(acct.id, hashSecret(keep.token))).toBe(0);
  });

  it("endAll without a kept hash ends every session", async () => {
    const s = sessions();
    const acct = account();
    const a = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const b = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(await s.endAll(acct.id)).toBe(2);
    await expectUnauthenticated(s.validate(a.token));
    await expectUnauthenticated(s.validate(b.token));
  });
});

describe("expiry and cache bounds", () => {
  it("fails after expiresAt even while the entry is cached", async () => {
    const s = sessions({ maxAgeMs: HOUR });
    const { token, session } = await s.issue(account(), settings({ sessionIdleTimeoutMs: 10 * SECOND }), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(token);
    clock = session.expiresAt - 1;
    expect(cachedAnswer(s, token)).toBeDefined();
    await expect(settle(s.validate(token))).resolves.toBeDefined();
    clock = session.expiresAt;
    expect(cachedAnswer(s, token)).toBeUndefined();
    await expectUnauthenticated(s.validate(token));
  });

  it("checks expiry of what the store returns too", async () => {
    // A store that never forgets: the expiry check must not rely on store TTLs.
    const records = new Map<string, SessionRecord>();
    const store: SessionStore = {
      create: async (hash, session) => void records.set(hash, session),
      get: async (_account, hash) => records.get(hash),
      delete: async (_account, hash) => records.delete(hash),
      touch: async () => false,
      listForAccount: async () => [],
      deleteAllForAccount: async () => [],
    };
    const s = createSessions({ dataKey: async () => TEST_DATA_KEY, store, invalidation: stores.invalidation, now, cache: { maxAgeMs: 0 } });
    const { token, session } = await s.issue(
      account(),
      settings({ sessionIdleTimeoutMs: 2 * HOUR, sessionAbsoluteLifetimeMs: HOUR }),
      META,
      AssuranceLevel.AAL1,
      TEST_DATA_KEY,
      METHODS,
    );
    await expect(settle(s.validate(token))).resolves.toBeDefined();
    clock = session.absoluteExpiresAt;
    await expectUnauthenticated(s.validate(token));
  });

  it("enforces the absolute lifetime even when the idle expiry lies beyond it", async () => {
    // E.g. a record whose idle expiry was extended by activity: the absolute cap still wins.
    const records = new Map<string, SessionRecord>();
    const store: SessionStore = {
      create: async (hash, session) => void records.set(hash, session),
      get: async (_account, hash) => records.get(hash),
      delete: async (_account, hash) => records.delete(hash),
      touch: async () => false,
      listForAccount: async () => [],
      deleteAllForAccount: async () => [],
    };
    const s = createSessions({ dataKey: async () => TEST_DATA_KEY, store, invalidation: stores.invalidation, now, cache: { maxAgeMs: 3 * HOUR } });
    const { token, session } = await s.issue(
      account(),
      settings({ sessionIdleTimeoutMs: HOUR, sessionAbsoluteLifetimeMs: 2 * HOUR }),
      META,
      AssuranceLevel.AAL1,
      TEST_DATA_KEY,
      METHODS,
    );
    records.set(hashSecret(token), { ...session, expiresAt: START + 10 * HOUR });
    await expect(settle(s.validate(token))).resolves.toBeDefined();
    clock = START + 2 * HOUR - 1;
    expect(cachedAnswer(s, token)).toBeDefined();
    clock = START + 2 * HOUR;
    expect(cachedAnswer(s, token)).toBeUndefined();
    await expectUnauthenticated(s.validate(token));
  });

  it("serves a session deleted behind its back from cache for at most maxAgeMs", async () => {
    const maxAgeMs = 5 * SECOND;
    const s = sessions({ maxAgeMs });
    const acct = account();
    const { token } = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(token);
    expect(await stores.sessions.delete(acct.id, hashSecret(token))).toBe(true);

    clock = START + maxAgeMs - 1;
    expect(cachedAnswer(s, token)).toBeDefined();
    await expect(settle(s.validate(token))).resolves.toBeDefined();

    clock = START + maxAgeMs;
    expect(cachedAnswer(s, token)).toBeUndefined();
    await expectUnauthenticated(s.validate(token));
  });

  it("does not cache at all when maxAgeMs is 0", async () => {
    const s = sessions({ maxAgeMs: 0 });
    const acct = account();
    const { token } = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(token);
    expect(cachedAnswer(s, token)).toBeUndefined();
    await stores.sessions.delete(acct.id, hashSecret(token));
    await expectUnauthenticated(s.validate(token));
  });

  it("evicts the oldest entry beyond maxEntries", async () => {
    const s = sessions({ maxEntries: 2 });
    const acct = account();
    const a = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const b = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const c = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(a.token);
    await s.validate(b.token);
    expect(cachedAnswer(s, a.token)).toBeDefined();
    expect(cachedAnswer(s, b.token)).toBeDefined();
    await s.validate(c.token);
    // b and c first: asking for the evicted a reads it from the store and caches it again.
    expect(cachedAnswer(s, b.token)).toBeDefined();
    expect(cachedAnswer(s, c.token)).toBeDefined();
    expect(cachedAnswer(s, a.token)).toBeUndefined();
    // The evicted session is still valid; it is just read from the store again.
    await expect(settle(s.validate(a.token))).resolves.toMatchObject({ session: a.session });
  });
});

describe("invalidation across instances", () => {
  it("end() on another instance drops the cached entry at once", async () => {
    const a = sessions({ maxAgeMs: HOUR });
    const b = sessions({ maxAgeMs: HOUR });
    await a.listen();
    await b.listen();
    const { token } = await a.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await a.validate(token);
    await b.validate(token);
    expect(cachedAnswer(a, token)).toBeDefined();

    await b.end(token);

    expect(cachedAnswer(a, token)).toBeUndefined();
    await expectUnauthenticated(a.validate(token));
    await expectUnauthenticated(b.validate(token));
  });

  it("without listen() the other instance keeps serving its cache (what invalidation fixes)", async () => {
    const a = sessions({ maxAgeMs: HOUR });
    const b = sessions({ maxAgeMs: HOUR });
    const { token } = await a.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await a.validate(token);
    await b.end(token);
    expect(cachedAnswer(a, token)).toBeDefined();
  });

  it("endAll() on another instance drops exactly the ended entries", async () => {
    const a = sessions({ maxAgeMs: HOUR });
    const b = sessions({ maxAgeMs: HOUR });
    await a.listen();
    await b.listen();
    const acct = account();
    const keep = await a.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const drop = await a.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await a.validate(keep.token);
    await a.validate(drop.token);

    expect(await b.endAll(acct.id, hashSecret(keep.token))).toBe(1);

    expect(cachedAnswer(a, drop.token)).toBeUndefined();
    expect(cachedAnswer(a, keep.token)).toBeDefined();
    await expectUnauthenticated(a.validate(drop.token));
  });

  it('an "all" invalidation clears the whole cache', async () => {
    const a = sessions({ maxAgeMs: HOUR });
    await a.listen();
    const { token } = await a.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await a.validate(token);
    await stores.invalidation.publish([{ kind: "all" }]);
    expect(cachedAnswer(a, token)).toBeUndefined();
  });

  it("does not cache a store read that raced with a revocation", async () => {
    // A store whose get() is answered only when we say so, while a revocation lands.
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const slow: SessionStore = {
      ...stores.sessions,
      get: async (a, h) => {
        const s = await stores.sessions.get(a, h);
        await gate;
        return s;
      },
    };
    const a = createSessions({ dataKey: async () => TEST_DATA_KEY, store: slow, invalidation: stores.invalidation, now, cache: { maxAgeMs: HOUR } });
    const b = sessions({ maxAgeMs: HOUR });
    await a.listen();
    const { token } = await b.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const pending = a.validate(token);
    await b.end(token);
    release();
    await pending; // answered as of its read
    expect(cachedAnswer(a, token)).toBeUndefined();
    await expectUnauthenticated(a.validate(token));
  });

  it("instances on different stores do not share invalidations", async () => {
    const elsewhere = createMemoryStores({ now });
    try {
      const a = sessions({ maxAgeMs: HOUR });
      await a.listen();
      const { token } = await a.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
      await a.validate(token);
      await elsewhere.invalidation.publish([{ kind: "session", tokenHashes: [hashSecret(token)] }]);
      expect(cachedAnswer(a, token)).toBeDefined();
    } finally {
      await elsewhere.close();
    }
  });
});

describe("list / revoke", () => {
  it("lists the account's live sessions newest first, with their hashes, and no one else's", async () => {
    const s = sessions();
    const acct = account();
    const first = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    clock += SECOND;
    const second = await s.issue(
      acct,
      settings({ sessionIdleTimeoutMs: 10 * SECOND }),
      { ip: "198.51.100.1", userAgent: "other" },
      AssuranceLevel.AAL1,
      TEST_DATA_KEY,
      METHODS,
    );
    clock += SECOND;
    const third = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);

    const clients = [META, { ip: "198.51.100.1", userAgent: "other" }, META];
    expect(await s.list(acct.id)).toStrictEqual(
      [third, second, first].map(({ token, session }, i) => ({ tokenHash: hashSecret(token), session, client: clients[i] })),
    );
    clock += 10 * SECOND; // the second one's idle expiry passes
    expect((await s.list(acct.id)).map((v) => v.session.sessionId)).toStrictEqual([third.session.sessionId, first.session.sessionId]);
  });

  it("revoke ends the account's session with that id, in this instance's cache and the others'", async () => {
    const a = sessions({ maxAgeMs: HOUR });
    const b = sessions({ maxAgeMs: HOUR });
    await a.listen();
    await b.listen();
    const acct = account();
    const gone = await a.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const kept = await a.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    for (const s of [a, b]) for (const { token } of [gone, kept]) await s.validate(token);

    expect(await a.revoke(acct.id, gone.session.sessionId)).toBe(true);

    for (const s of [a, b]) {
      expect(cachedAnswer(s, gone.token)).toBeUndefined();
      await expectUnauthenticated(s.validate(gone.token));
      await expect(settle(s.validate(kept.token))).resolves.toMatchObject({ session: kept.session });
    }
    expect(await a.revoke(acct.id, gone.session.sessionId)).toBe(false);
  });

  it("revoke never ends another account's session", async () => {
    const s = sessions();
    const mine = account();
    const theirs = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.issue(mine, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    expect(await s.revoke(mine.id, theirs.session.sessionId)).toBe(false);
    expect(await s.revoke(mine.id, newId(clock))).toBe(false);
    await expect(settle(s.validate(theirs.token))).resolves.toMatchObject({ session: theirs.session });
  });
});

describe("refresh", () => {
  const short = settings({ sessionIdleTimeoutMs: HOUR, sessionAbsoluteLifetimeMs: 3 * HOUR });

  it("slides the idle expiry from now, records the time seen and extends the stored TTL", async () => {
    const s = sessions({ maxAgeMs: HOUR });
    const acct = account();
    const { token, session } = await s.issue(acct, short, META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    clock += 50 * 60 * SECOND;
    const valid = await s.validate(token);

    const refreshed = await s.refresh(valid, short);

    expect(refreshed).toStrictEqual({ ...session, lastSeenAt: clock, expiresAt: clock + HOUR });
    expect(await stores.sessions.get(acct.id, hashSecret(token))).toStrictEqual(refreshed);
    // The cached copy (old expiry) is not what validate answers with now.
    expect((await s.validate(token)).session).toStrictEqual(refreshed);
    clock += 30 * 60 * SECOND; // past the first expiry: the store still has it (its TTL moved too)
    expect((await s.validate(token)).session).toStrictEqual(refreshed);
  });

  it("never extends past the absolute lifetime", async () => {
    const s = sessions();
    const { token, session } = await s.issue(account(), short, META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    for (let i = 0; i < 5; i++) {
      clock += 50 * 60 * SECOND;
      if (clock >= session.absoluteExpiresAt) break;
      const refreshed = await s.refresh(await s.validate(token), short);
      expect(refreshed.expiresAt).toBe(Math.min(clock + HOUR, session.absoluteExpiresAt));
    }
    await expectUnauthenticated(s.validate(token));
  });

  it("refuses an ended session and does not bring it back", async () => {
    const s = sessions({ maxAgeMs: HOUR });
    const acct = account();
    const { token } = await s.issue(acct, short, META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const valid = await s.validate(token);
    await s.end(token);
    await expectUnauthenticated(s.refresh(valid, short));
    expect(await stores.sessions.get(acct.id, hashSecret(token))).toBeUndefined();
    await expectUnauthenticated(s.validate(token));
  });

  it("tells other instances to drop their copy when the expiry moves earlier (a shortened idle timeout)", async () => {
    const a = sessions({ maxAgeMs: HOUR });
    const b = sessions({ maxAgeMs: HOUR });
    await a.listen();
    await b.listen();
    const { token } = await a.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await b.validate(token);
    await a.refresh(await a.validate(token), settings());
    expect(cachedAnswer(b, token)).toBeDefined(); // later expiry: b's copy may stay until it lapses

    const shortened = await a.refresh(await a.validate(token), short);
    expect(cachedAnswer(b, token)).toBeUndefined();
    expect((await b.validate(token)).session).toStrictEqual(shortened);
  });
});

describe("revocation races and group invalidations", () => {
  it("an instance never serves a session it has itself ended, even a read made while the delete was in flight (no listen())", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const slowDelete: SessionStore = { ...stores.sessions, delete: async (a, h) => (await gate, stores.sessions.delete(a, h)) };
    const s = createSessions({ dataKey: async () => TEST_DATA_KEY, store: slowDelete, invalidation: stores.invalidation, now, cache: { maxAgeMs: HOUR } });
    const { token } = await s.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const ending = s.end(token);
    await settle(s.validate(token)); // read while the store still has it
    release();
    await ending;
    expect(cachedAnswer(s, token)).toBeUndefined();
    await expectUnauthenticated(s.validate(token));
  });

  it("RevokeOtherSessions (endAll) on another instance: a read that raced it is not cached there", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const slow: SessionStore = {
      ...stores.sessions,
      get: async (a, h) => {
        const s = await stores.sessions.get(a, h);
        await gate;
        return s;
      },
    };
    const a = createSessions({ dataKey: async () => TEST_DATA_KEY, store: slow, invalidation: stores.invalidation, now, cache: { maxAgeMs: HOUR } });
    const b = sessions({ maxAgeMs: HOUR });
    await a.listen();
    const acct = account();
    const keep = await b.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const other = await b.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const pending = settle(a.validate(other.token)); // read before the revocation, answered after it
    expect(await b.endAll(acct.id, hashSecret(keep.token))).toBe(1);
    release();
    await pending;
    expect(cachedAnswer(a, other.token)).toBeUndefined();
    await expectUnauthenticated(a.validate(other.token));
  });

  it('an "account" invalidation drops every cached session of that account, and only those', async () => {
    const a = sessions({ maxAgeMs: HOUR });
    await a.listen();
    const mine = account();
    const theirs = account();
    const issued = [
      await a.issue(mine, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS),
      await a.issue(mine, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS),
    ];
    const bystander = await a.issue(theirs, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    for (const { token } of [...issued, bystander]) await a.validate(token);
    await stores.invalidation.publish([{ kind: "account", accountId: mine.id }]);
    for (const { token } of issued) expect(cachedAnswer(a, token)).toBeUndefined();
    expect(cachedAnswer(a, bystander.token)).toBeDefined();
  });

  it('a "tenant" invalidation drops every cached session of that tenant, and only those', async () => {
    const a = sessions({ maxAgeMs: HOUR });
    await a.listen();
    const inTenant = await a.issue(account({ tenantId: "shop" }), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const elsewhere = await a.issue(account(), settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    for (const { token } of [inTenant, elsewhere]) await a.validate(token);
    await stores.invalidation.publish([{ kind: "tenant", tenantId: "shop" }]);
    expect(cachedAnswer(a, inTenant.token)).toBeUndefined();
    expect(cachedAnswer(a, elsewhere.token)).toBeDefined();
  });

  it("while the bus reports the subscription down, every validation asks the store; back up, the cache serves again", async () => {
    const subscribers: InvalidationSubscriber[] = [];
    const bus: InvalidationBus = { publish: async () => {}, subscribe: async (s) => void subscribers.push(s) };
    let lookups = 0;
    const counting: SessionStore = { ...stores.sessions, get: (a, h) => (lookups++, stores.sessions.get(a, h)) };
    const s = createSessions({ dataKey: async () => TEST_DATA_KEY, store: counting, invalidation: bus, now, cache: { maxAgeMs: HOUR } });
    await s.listen();
    const acct = account();
    const { token } = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(token);
    expect(cachedAnswer(s, token)).toBeDefined();
    expect(lookups).toBe(1);

    subscribers.forEach((x) => x.subscribed(false));
    expect(cachedAnswer(s, token)).toBeUndefined();
    await s.validate(token);
    expect(cachedAnswer(s, token)).toBeUndefined();
    await stores.sessions.delete(acct.id, hashSecret(token)); // ended elsewhere; the message would be lost
    await expectUnauthenticated(s.validate(token));

    subscribers.forEach((x) => x.subscribed(true));
    const again = await s.issue(acct, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(again.token);
    expect(cachedAnswer(s, again.token)).toBeDefined();
  });
});

describe("pending revocations (refuseRevoked, endWhere)", () => {
  const revocation = (accountId: string, createdAt: number, keepTokenHash: string | null = null) => ({
    id: newId(createdAt),
    tenantId: DEFAULT_TENANT_ID,
    accountId,
    reason: "role_changed" as const,
    createdAt,
    keepTokenHash,
  });

  it("refuses the sessions issued up to the revocation — cached, stored, listed or refreshed — except the one kept, and not later ones", async () => {
    const s = sessions();
    const a = account();
    const old = await s.issue(a, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const kept = await s.issue(a, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(old.token); // cached
    clock += SECOND;
    s.refuseRevoked([revocation(a.id, clock, hashSecret(kept.token))]);
    clock += SECOND;
    const later = await s.issue(a, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);

    expect(cachedAnswer(s, old.token)).toBeUndefined();
    await expect(settle(s.validate(old.token))).rejects.toMatchObject({ reason: "SESSION_INVALID" });
    expect((await s.validate(kept.token)).session.sessionId).toBe(kept.session.sessionId);
    expect((await s.validate(later.token)).session.sessionId).toBe(later.session.sessionId);
    expect((await s.list(a.id)).map((v) => v.session.sessionId).sort()).toEqual([kept.session.sessionId, later.session.sessionId].sort());
    const oldValid = { tokenHash: hashSecret(old.token), session: old.session };
    await expect(s.refresh(oldValid, settings())).rejects.toMatchObject({ reason: "SESSION_INVALID" });
    // Still in the store: refused, not ended (that is endWhere's job).
    expect(await stores.sessions.get(a.id, hashSecret(old.token))).toBeDefined();
  });

  it("when a revocation leaves the list (carried out elsewhere), drops what the cache held of that account", async () => {
    const s = sessions();
    const a = account();
    const other = account();
    const mine = await s.issue(a, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const theirs = await s.issue(other, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    s.refuseRevoked([revocation(a.id, clock - 1)]); // older than the session: it stays valid
    await s.validate(mine.token);
    await s.validate(theirs.token);
    expect(cachedAnswer(s, mine.token)).toBeDefined();
    // Another instance ended the session but its invalidation never arrived here.
    await stores.sessions.delete(a.id, hashSecret(mine.token));
    s.refuseRevoked([]);
    expect(cachedAnswer(s, mine.token)).toBeUndefined();
    await expect(settle(s.validate(mine.token))).rejects.toMatchObject({ reason: "SESSION_INVALID" });
    expect(cachedAnswer(s, theirs.token)).toBeDefined();
  });

  it("endWhere ends the selected sessions in the store and this cache, and tells other instances", async () => {
    const s = sessions();
    const a = account();
    const admin = await s.issue({ ...a, role: Role.ADMIN }, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    const user = await s.issue(a, settings(), META, AssuranceLevel.AAL1, TEST_DATA_KEY, METHODS);
    await s.validate(admin.token);
    const published: Invalidation[] = [];
    await stores.invalidation.subscribe({ invalidate: (messages) => published.push(...messages), subscribed: () => {} });
    expect(await s.endWhere(a.id, (session) => session.role !== Role.USER)).toBe(1);
    await expect(settle(s.validate(admin.token))).rejects.toMatchObject({ reason: "SESSION_INVALID" });
    expect((await s.validate(user.token)).session.role).toBe(Role.USER);
    expect(published).toContainEqual({ kind: "session", tokenHashes: [hashSecret(admin.token)] });
    expect(await s.endWhere(a.id, (session) => session.role !== Role.USER)).toBe(0);
  });
});
