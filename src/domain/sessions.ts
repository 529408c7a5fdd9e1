// Sessions: issue, validate (the hot path), end. A session token is
// "<account id>.<256 random bits>"; only its SHA-256 is stored. The account id
// prefix lets every key of one account share a Redis Cluster slot.
// Validation is served from an in-process cache of recently validated sessions;
// sign-out and revocation publish the token hashes so every instance and worker
// drops them at once.
import { hashSecret, randomToken } from "../crypto/keyring.ts";
import { unauthenticated } from "./errors.ts";
import { isId, newId } from "./ids.ts";
import type { InvalidationBus, SessionStore } from "./ports/sessions.ts";
import type { Account, AssuranceLevel, SessionRecord, TenantSettings } from "./types.ts";

export interface RequestMeta {
  ip: string;
  userAgent: string;
}

export interface IssuedSession {
  token: string;
  session: SessionRecord;
}

export interface ValidSession {
  tokenHash: string;
  session: SessionRecord;
}

export interface Sessions {
  issue(account: Account, settings: TenantSettings, meta: RequestMeta, assurance: AssuranceLevel): Promise<IssuedSession>;
  /** The live session behind a token; unauthenticated when unknown, expired, revoked or malformed. */
  validate(token: string): Promise<ValidSession>;
  /** The cached session when the cache can answer on its own (no I/O), else undefined. */
  validateCached(token: string): ValidSession | undefined;
  /** Ends the session behind the token; succeeds when it is already gone. */
  end(token: string): Promise<void>;
  /** Ends every session of an account except one; returns how many ended. */
  endAll(accountId: string, keepTokenHash?: string): Promise<number>;
  /** The account's live sessions, newest first. */
  list(accountId: string): Promise<ValidSession[]>;
  /** Ends the account's session with this id (never another account's); false when the account has no such live session. */
  revoke(accountId: string, sessionId: string): Promise<boolean>;
  /**
   * Slides a live session's idle expiry to min(now + idle timeout, absolute
   * expiry) and records it as seen now; unauthenticated when it has ended.
   */
  refresh(valid: ValidSession, settings: TenantSettings): Promise<SessionRecord>;
  /** Starts listening for invalidations from other instances. */
  listen(): Promise<void>;
}

const TOKEN_SECRET_LENGTH = 43; // 32 bytes in base64url

function parseToken(token: string): { accountId: string; tokenHash: string } | undefined {
  const dot = token.indexOf(".");
  if (dot !== 36 || token.length !== 37 + TOKEN_SECRET_LENGTH) return undefined;
  const accountId = token.slice(0, dot);
  if (!isId(accountId)) return undefined;
  return { accountId, tokenHash: hashSecret(token) };
}

export interface SessionCacheOptions {
  /** Most sessions kept in memory. */
  maxEntries?: number;
  /** Longest a cached answer is trusted without asking the store (a bound on a missed invalidation). */
  maxAgeMs?: number;
}

export function createSessions(deps: {
  store: SessionStore;
  invalidation: InvalidationBus;
  now: () => number;
  cache?: SessionCacheOptions;
}): Sessions {
  const maxEntries = deps.cache?.maxEntries ?? 100_000;
  const maxAgeMs = deps.cache?.maxAgeMs ?? 30_000;
  const cache = new Map<string, { session: SessionRecord; cachedAt: number }>();

  function remember(tokenHash: string, session: SessionRecord, at: number) {
    if (maxAgeMs <= 0) return;
    if (cache.size >= maxEntries) {
      // Map iterates in insertion order: drop the oldest entry.
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(tokenHash, { session, cachedAt: at });
  }

  // Counts invalidations, so a store read that raced with one is not cached:
  // it could otherwise put a just-revoked session back for maxAgeMs.
  let invalidations = 0;

  function forget(tokenHashes: string[]) {
    invalidations++;
    if (tokenHashes.includes("*")) cache.clear();
    else for (const hash of tokenHashes) cache.delete(hash);
  }

  const live = (session: SessionRecord, at: number) => session.expiresAt > at && session.absoluteExpiresAt > at;
  const invalid = () => unauthenticated("SESSION_INVALID", "session is invalid or expired");

  /** Ends one session here, in the store, and in every other instance's cache. */
  async function endOne(accountId: string, tokenHash: string): Promise<boolean> {
    forget([tokenHash]);
    const ended = await deps.store.delete(accountId, tokenHash);
    await deps.invalidation.publish([tokenHash]);
    return ended;
  }

  async function listLive(accountId: string): Promise<ValidSession[]> {
    const at = deps.now();
    return (await deps.store.listForAccount(accountId))
      .filter(({ session }) => live(session, at))
      .sort((a, b) => b.session.createdAt - a.session.createdAt || (a.session.sessionId < b.session.sessionId ? 1 : -1));
  }

  return {
    async issue(account, settings, meta, assurance) {
      const at = deps.now();
      const absoluteExpiresAt = at + settings.sessionAbsoluteLifetimeMs;
      const session: SessionRecord = {
        sessionId: newId(at),
        accountId: account.id,
        tenantId: account.tenantId,
        role: account.role,
        assurance,
        createdAt: at,
        lastSeenAt: at,
        expiresAt: Math.min(at + settings.sessionIdleTimeoutMs, absoluteExpiresAt),
        absoluteExpiresAt,
        userAgent: meta.userAgent.slice(0, 200),
        ip: meta.ip,
      };
      const token = `${account.id}.${randomToken(32)}`;
      await deps.store.create(hashSecret(token), session, session.expiresAt - at);
      return { token, session };
    },

    validateCached(token) {
      const parsed = parseToken(token);
      if (!parsed) return undefined;
      const hit = cache.get(parsed.tokenHash);
      const at = deps.now();
      if (!hit || at - hit.cachedAt >= maxAgeMs || !live(hit.session, at)) return undefined;
      return { tokenHash: parsed.tokenHash, session: hit.session };
    },

    async validate(token) {
      const parsed = parseToken(token);
      if (!parsed) throw invalid();
      const at = deps.now();
      const hit = cache.get(parsed.tokenHash);
      if (hit && at - hit.cachedAt < maxAgeMs) {
        if (live(hit.session, at)) return { tokenHash: parsed.tokenHash, session: hit.session };
        cache.delete(parsed.tokenHash);
      }
      const before = invalidations;
      const session = await deps.store.get(parsed.accountId, parsed.tokenHash);
      if (!session || !live(session, at)) throw invalid();
      if (invalidations === before) remember(parsed.tokenHash, session, at);
      return { tokenHash: parsed.tokenHash, session };
    },

    async end(token) {
      const parsed = parseToken(token);
      if (parsed) await endOne(parsed.accountId, parsed.tokenHash);
    },

    async endAll(accountId, keepTokenHash) {
      const ended = await deps.store.deleteAllForAccount(accountId, keepTokenHash);
      forget(ended);
      await deps.invalidation.publish(ended);
      return ended.length;
    },

    list: listLive,

    async revoke(accountId, sessionId) {
      const target = (await listLive(accountId)).find(({ session }) => session.sessionId === sessionId);
      return target !== undefined && (await endOne(accountId, target.tokenHash));
    },

    async refresh({ tokenHash, session: seen }, settings) {
      const at = deps.now();
      // Refreshed from the stored record, not a cached copy.
      const current = await deps.store.get(seen.accountId, tokenHash);
      if (!current || !live(current, at)) throw invalid();
      const refreshed: SessionRecord = {
        ...current,
        lastSeenAt: at,
        expiresAt: Math.min(at + settings.sessionIdleTimeoutMs, current.absoluteExpiresAt),
      };
      const touched = await deps.store.touch(current.accountId, tokenHash, refreshed, refreshed.expiresAt - at);
      // Dropped rather than updated: re-caching here could outlive a revocation published meanwhile.
      // Other instances' copies expire no later than before and are then re-read from the store,
      // unless the expiry moved earlier (a shortened idle timeout): then they are told to drop theirs.
      forget([tokenHash]);
      if (!touched) throw invalid();
      if (refreshed.expiresAt < current.expiresAt) await deps.invalidation.publish([tokenHash]);
      return refreshed;
    },

    listen: () => deps.invalidation.subscribe(forget),
  };
}
