// Sessions: issue, validate (the hot path), end. A session token is
// "<account id>.<256 random bits>"; only its SHA-256 is stored. The account id
// prefix lets every key of one account share a Redis Cluster slot.
// Validation is served from an in-process cache of recently validated sessions
// (src/domain/invalidated-cache.ts); sign-out and revocation publish the token
// hashes so every instance and worker drops them at once (docs/revocation.md).
import { decryptString, encryptString, hashSecret } from "../crypto/keyring.ts";
import { systemRandom } from "../crypto/random.ts";
import { unauthenticated } from "./errors.ts";
import { isId, newId } from "./ids.ts";
import { randomToken } from "./one-time-tokens.ts";
import type { Random } from "./ports/random.ts";
import { accountGroup, createInvalidatedCache, listenForInvalidations, tenantGroup } from "./invalidated-cache.ts";
import { domainEvent, EventType } from "./events.ts";
import type { EventStore } from "./ports/events.ts";
import type { InvalidationBus } from "./ports/invalidation.ts";
import type { PendingRevocation } from "./ports/revocations.ts";
import type { SessionStore } from "./ports/sessions.ts";
import type { Account, AssuranceLevel, AuthenticationMethod, SessionRecord, TenantSettings } from "./types.ts";

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

/** A session as its owner sees it in a list: with where it was opened, unsealed. */
export interface ListedSession extends ValidSession {
  client: RequestMeta;
}

/** The longest user agent kept with a session: enough to recognise a device, and a session stays under 512 bytes in Redis. */
export const SESSION_USER_AGENT_MAX = 120;
const clientContext = (sessionId: string) => `session-client:${sessionId}`;

/** Seals where a session was opened under the account's data key: IP addresses and user agents are personal data. */
export function sealSessionClient(dataKey: Buffer, sessionId: string, meta: RequestMeta): string {
  return encryptString(dataKey, JSON.stringify([meta.ip, meta.userAgent.slice(0, SESSION_USER_AGENT_MAX)]), clientContext(sessionId));
}

/** Opens sealSessionClient's value; empty when it cannot be opened (the key is gone: the account was erased). */
export function openSessionClient(dataKey: Buffer | undefined, session: SessionRecord): RequestMeta {
  if (!dataKey) return { ip: "", userAgent: "" };
  try {
    const [ip, userAgent] = JSON.parse(decryptString(dataKey, session.client, clientContext(session.sessionId))) as [string, string];
    return { ip, userAgent };
  } catch {
    return { ip: "", userAgent: "" };
  }
}

export interface Sessions {
  /**
   * `dataKey`: the account's, which seals where the session was opened;
   * `methods`: the proofs it is opened with (recorded, shown by ListSessions and ValidateSession);
   * one without `at` was completed now (the session's creation time).
   * The tenant's blocking hook (before_session) is asked first and may refuse.
   */
  issue(
    account: Account,
    settings: TenantSettings,
    meta: RequestMeta,
    assurance: AssuranceLevel,
    dataKey: Buffer,
    methods: ReadonlyArray<Omit<AuthenticationMethod, "at"> & { at?: number }>,
  ): Promise<IssuedSession>;
  /**
   * The live session behind a token; unauthenticated when unknown, expired,
   * revoked or malformed. Answers synchronously (a plain value, no I/O) when the
   * cache holds the session — the hot path relies on it — and with a promise
   * otherwise (a refusal is always a rejected promise, never a throw).
   */
  validate(token: string): ValidSession | Promise<ValidSession>;
  /** Ends the session behind the token; succeeds when it is already gone. */
  end(token: string): Promise<void>;
  /** Ends every session of an account except one; returns how many ended. */
  endAll(accountId: string, keepTokenHash?: string): Promise<number>;
  /** Ends the account's live sessions `which` selects, in the store and every instance's cache; returns how many ended. */
  endWhere(accountId: string, which: (session: SessionRecord, tokenHash: string) => boolean): Promise<number>;
  /**
   * The revocations committed but not yet carried out in the store (src/domain/revocations.ts):
   * validation refuses the sessions they name, whatever the store or the cache still holds.
   * Replaces the previous list.
   */
  refuseRevoked(pending: readonly PendingRevocation[]): void;
  /** The account's live sessions, newest first, with where each was opened (unsealed with the account's data key). */
  list(accountId: string): Promise<ListedSession[]>;
  /**
   * Ends the account's session with this id (never another account's); false when the account has no
   * such live session — and then the account's invalidation is announced again, so a retry after a
   * failed announcement still ends it in every instance's cache.
   */
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
  /** Session tokens and ids draw from it (default: the CSPRNG). */
  random?: Random;
  store: SessionStore;
  invalidation: InvalidationBus;
  now: () => number;
  cache?: SessionCacheOptions;
  /** The account's data key, to list its sessions; undefined when it is gone. */
  dataKey: (tenantId: string, accountId: string) => Promise<Buffer | undefined>;
  /** Where session.created and session.revoked go (src/domain/events.ts); none: not recorded. */
  events?: Pick<EventStore, "append">;
  /** Asked before any session is issued (the tenant's blocking hook, src/domain/hooks.ts); throws to refuse. */
  beforeIssue?: (account: Account, meta: RequestMeta, methods: ReadonlyArray<Pick<AuthenticationMethod, "method">>) => Promise<void>;
}): Sessions {
  const random = deps.random ?? systemRandom;
  // token hash → session; grouped by account and tenant for account- and tenant-wide invalidation.
  const cache = createInvalidatedCache<SessionRecord>({ maxEntries: deps.cache?.maxEntries ?? 100_000, maxAgeMs: deps.cache?.maxAgeMs ?? 30_000 }, deps.now);

  // Pending revocations by account id; empty almost always, so the hot path pays one size check.
  let revoked = new Map<string, PendingRevocation[]>();
  const isRevoked = (tokenHash: string, session: SessionRecord) =>
    revoked.size > 0 && (revoked.get(session.accountId)?.some((r) => session.createdAt <= r.createdAt && tokenHash !== r.keepTokenHash) ?? false);

  /** A session's event: its id and assurance, never where it was opened. */
  async function recordEvent(type: EventType, session: SessionRecord, at: number): Promise<void> {
    await deps.events?.append([domainEvent(type, { tenantId: session.tenantId, accountId: session.accountId, at, random }, { session_id: session.sessionId })]);
  }

  const live = (session: SessionRecord, at: number) => session.expiresAt > at && session.absoluteExpiresAt > at;
  const invalid = () => unauthenticated("SESSION_INVALID", "session is invalid or expired");

  /** Drops ended sessions here before and after the store write (a read between the two is not cached), then everywhere. */
  async function ended<T>(tokenHashes: () => string[], write: () => Promise<T>): Promise<T> {
    for (const hash of tokenHashes()) cache.delete(hash);
    const result = await write();
    const hashes = tokenHashes();
    for (const hash of hashes) cache.delete(hash);
    await deps.invalidation.publish(hashes.length > 0 ? [{ kind: "session", tokenHashes: hashes }] : []);
    return result;
  }

  /** Ends one session here, in the store, and in every other instance's cache. */
  function endOne(accountId: string, tokenHash: string): Promise<boolean> {
    return ended(
      () => [tokenHash],
      () => deps.store.delete(accountId, tokenHash),
    );
  }

  async function read(accountId: string, tokenHash: string): Promise<ValidSession> {
    const at = deps.now();
    const epoch = cache.epoch();
    const session = await deps.store.get(accountId, tokenHash);
    if (!session || !live(session, at) || isRevoked(tokenHash, session)) throw invalid();
    cache.set(tokenHash, session, epoch, [accountGroup(session.accountId), tenantGroup(session.tenantId)]);
    return { tokenHash, session };
  }

  async function listLive(accountId: string): Promise<ValidSession[]> {
    const at = deps.now();
    return (await deps.store.listForAccount(accountId))
      .filter(({ tokenHash, session }) => live(session, at) && !isRevoked(tokenHash, session))
      .sort((a, b) => b.session.createdAt - a.session.createdAt || (a.session.sessionId < b.session.sessionId ? 1 : -1));
  }

  return {
    async issue(account, settings, meta, assurance, dataKey, methods) {
      await deps.beforeIssue?.(account, meta, methods);
      const at = deps.now();
      const absoluteExpiresAt = at + settings.sessionAbsoluteLifetimeMs;
      const sessionId = newId(at, random);
      const session: SessionRecord = {
        sessionId,
        accountId: account.id,
        tenantId: account.tenantId,
        role: account.role,
        assurance,
        createdAt: at,
        lastSeenAt: at,
        expiresAt: Math.min(at + settings.sessionIdleTimeoutMs, absoluteExpiresAt),
        absoluteExpiresAt,
        client: sealSessionClient(dataKey, sessionId, meta),
        methods: methods.map((m) => ({ method: m.method, identityId: m.identityId, at: m.at ?? at })),
      };
      const token = `${account.id}.${randomToken(random, 32)}`;
      await deps.store.create(hashSecret(token), session, session.expiresAt - at);
      await recordEvent(EventType.SESSION_CREATED, session, at);
      return { token, session };
    },

    validate(token) {
      const parsed = parseToken(token);
      if (!parsed) return Promise.reject(invalid());
      const hit = cache.get(parsed.tokenHash);
      if (hit) {
        if (isRevoked(parsed.tokenHash, hit)) return Promise.reject(invalid());
        if (live(hit, deps.now())) return { tokenHash: parsed.tokenHash, session: hit };
        cache.delete(parsed.tokenHash);
      }
      return read(parsed.accountId, parsed.tokenHash);
    },

    async end(token) {
      const parsed = parseToken(token);
      if (!parsed) return;
      // Read first only to name the session in its event (sign-out is no hot path).
      const session = deps.events ? await deps.store.get(parsed.accountId, parsed.tokenHash) : undefined;
      if ((await endOne(parsed.accountId, parsed.tokenHash)) && session) await recordEvent(EventType.SESSION_REVOKED, session, deps.now());
    },

    async endAll(accountId, keepTokenHash) {
      let hashes: string[] = [];
      await ended(
        () => hashes,
        async () => (hashes = await deps.store.deleteAllForAccount(accountId, keepTokenHash)),
      );
      return hashes.length;
    },

    async endWhere(accountId, which) {
      const chosen = (await deps.store.listForAccount(accountId)).filter(({ session, tokenHash }) => which(session, tokenHash)).map((s) => s.tokenHash);
      // Nothing left to delete may mean an earlier attempt deleted them and then failed to
      // announce it: announce again (the whole account, the hashes are gone), else other
      // instances could answer from their caches until the cache bound.
      if (chosen.length === 0) {
        cache.deleteGroup(accountGroup(accountId));
        await deps.invalidation.publish([{ kind: "account", accountId }]);
        return 0;
      }
      let count = 0;
      await ended(
        () => chosen,
        async () => {
          for (const tokenHash of chosen) if (await deps.store.delete(accountId, tokenHash)) count++;
        },
      );
      return count;
    },

    refuseRevoked(pending) {
      const next = new Map<string, PendingRevocation[]>();
      for (const r of pending) next.set(r.accountId, [...(next.get(r.accountId) ?? []), r]);
      // An account whose revocation was carried out (maybe by another instance, whose
      // invalidation may never have reached this one): drop whatever this cache holds of it.
      for (const accountId of revoked.keys()) if (!next.has(accountId)) cache.deleteGroup(accountGroup(accountId));
      revoked = next;
    },

    async list(accountId) {
      const live = await listLive(accountId);
      if (live.length === 0) return [];
      const dataKey = await deps.dataKey(live[0]!.session.tenantId, accountId);
      return live.map((s) => ({ ...s, client: openSessionClient(dataKey, s.session) }));
    },

    async revoke(accountId, sessionId) {
      const target = (await listLive(accountId)).find(({ session }) => session.sessionId === sessionId);
      if (target !== undefined && (await endOne(accountId, target.tokenHash))) {
        await recordEvent(EventType.SESSION_REVOKED, target.session, deps.now());
        return true;
      }
      // Not found may be a retry after an attempt that deleted the session and then failed to
      // announce it (its token hash is gone with it): announce the caller's whole account, so the
      // retry ends it in every instance's cache too.
      await deps.invalidation.publish([{ kind: "account", accountId }]);
      return false;
    },

    async refresh({ tokenHash, session: seen }, settings) {
      const at = deps.now();
      // Refreshed from the stored record, not a cached copy.
      const current = await deps.store.get(seen.accountId, tokenHash);
      if (!current || !live(current, at) || isRevoked(tokenHash, current)) throw invalid();
      const refreshed: SessionRecord = {
        ...current,
        lastSeenAt: at,
        expiresAt: Math.min(at + settings.sessionIdleTimeoutMs, current.absoluteExpiresAt),
      };
      const touched = await deps.store.touch(current.accountId, tokenHash, refreshed, refreshed.expiresAt - at);
      // Dropped rather than updated: re-caching here could outlive a revocation published meanwhile.
      // Other instances' copies expire no later than before and are then re-read from the store,
      // unless the expiry moved earlier (a shortened idle timeout): then they are told to drop theirs.
      cache.delete(tokenHash);
      if (!touched) throw invalid();
      if (refreshed.expiresAt < current.expiresAt) await deps.invalidation.publish([{ kind: "session", tokenHashes: [tokenHash] }]);
      return refreshed;
    },

    listen: () =>
      listenForInvalidations(deps.invalidation, cache, (message) => {
        if (message.kind === "session") for (const hash of message.tokenHashes) cache.delete(hash);
        else if (message.kind === "account") cache.deleteGroup(accountGroup(message.accountId));
        else if (message.kind === "tenant") cache.deleteGroup(tenantGroup(message.tenantId));
      }),
  };
}
