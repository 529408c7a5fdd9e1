// In-process ephemeral stores for the embedded development default and unit
// tests. Same contracts as the Redis stores (test/contract proves it); state
// lives in this process only, so the embedded mode runs a single worker.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Invalidation, InvalidationBus } from "../../domain/ports/invalidation.ts";
import type { Leases } from "../../domain/ports/leases.ts";
import type { RateLimiter } from "../../domain/ports/limits.ts";
import type { SessionStore } from "../../domain/ports/sessions.ts";
import type { EphemeralStores } from "../../domain/ports/stores.ts";
import type { TokenStore } from "../../domain/ports/tokens.ts";
import type { CodeStore, PendingCode } from "../../domain/ports/codes.ts";
import type { OneTimeToken, SessionRecord } from "../../domain/types.ts";

class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();
  private readonly now: () => number;
  constructor(now: () => number) {
    this.now = now;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
  }
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  delete(key: string): boolean {
    const existed = this.get(key) !== undefined;
    this.entries.delete(key);
    return existed;
  }
  /** Drops expired entries so an idle development server does not grow without bound. */
  sweep(): void {
    const t = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= t) this.entries.delete(key);
  }
}

function sessionStore(now: () => number): { store: SessionStore; sweep: () => void } {
  const sessions = new ExpiringMap<SessionRecord>(now);
  const byAccount = new Map<string, Set<string>>();
  const key = (accountId: string, tokenHash: string) => `${accountId}:${tokenHash}`;
  const store: SessionStore = {
    async create(tokenHash, session, ttlMs) {
      sessions.set(key(session.accountId, tokenHash), structuredClone(session), ttlMs);
      const index = byAccount.get(session.accountId) ?? new Set<string>();
      index.add(tokenHash);
      byAccount.set(session.accountId, index);
    },
    async get(accountId, tokenHash) {
      const session = sessions.get(key(accountId, tokenHash));
      return session && structuredClone(session);
    },
    async delete(accountId, tokenHash) {
      byAccount.get(accountId)?.delete(tokenHash);
      return sessions.delete(key(accountId, tokenHash));
    },
    async touch(accountId, tokenHash, session, ttlMs) {
      if (sessions.get(key(accountId, tokenHash)) === undefined) return false;
      sessions.set(key(accountId, tokenHash), structuredClone(session), ttlMs);
      return true;
    },
    async listForAccount(accountId) {
      const live: Array<{ tokenHash: string; session: SessionRecord }> = [];
      for (const tokenHash of byAccount.get(accountId) ?? []) {
        const session = sessions.get(key(accountId, tokenHash));
        if (session) live.push({ tokenHash, session: structuredClone(session) });
        else byAccount.get(accountId)?.delete(tokenHash);
      }
      return live;
    },
    async deleteAllForAccount(accountId, keepTokenHash) {
      const ended: string[] = [];
      for (const tokenHash of [...(byAccount.get(accountId) ?? [])]) {
        if (tokenHash === keepTokenHash) continue;
        if (sessions.delete(key(accountId, tokenHash))) ended.push(tokenHash);
        byAccount.get(accountId)?.delete(tokenHash);
      }
      return ended;
    },
  };
  return { store, sweep: () => sessions.sweep() };
}

function tokenStore(now: () => number): { store: TokenStore; sweep: () => void } {
  const tokens = new ExpiringMap<OneTimeToken>(now);
  const store: TokenStore = {
    async put(tokenHash, token, ttlMs) {
      tokens.set(tokenHash, structuredClone(token), ttlMs);
    },
    async take(tokenHash) {
      const token = tokens.get(tokenHash);
      tokens.delete(tokenHash);
      return token;
    },
    async peek(tokenHash) {
      const token = tokens.get(tokenHash);
      return token && structuredClone(token);
    },
  };
  return { store, sweep: () => tokens.sweep() };
}

function codeStore(now: () => number): { store: CodeStore; sweep: () => void } {
  const codes = new ExpiringMap<{ code: PendingCode; failed: number }>(now);
  const store: CodeStore = {
    async put(key, code, ttlMs) {
      codes.set(key, { code: structuredClone(code), failed: 0 }, ttlMs);
    },
    async attempt(key, codeHash, maxAttempts) {
      const pending = codes.get(key);
      if (!pending) return { outcome: "none" };
      if (pending.code.codeHash === codeHash) {
        codes.delete(key);
        return { outcome: "match", code: structuredClone(pending.code) };
      }
      pending.failed += 1;
      const attemptsLeft = Math.max(0, maxAttempts - pending.failed);
      if (attemptsLeft === 0) codes.delete(key);
      return { outcome: "mismatch", attemptsLeft };
    },
  };
  return { store, sweep: () => codes.sweep() };
}

function rateLimiter(now: () => number): { store: RateLimiter; sweep: () => void } {
  // One map of counts per group and window, as the Redis store keeps one hash.
  const windows = new ExpiringMap<Map<string, number>>(now);
  const windowKey = (group: string, windowMs: number, t: number) => `${group}\u0000${windowMs}:${Math.floor(t / windowMs)}`;
  const remainingMs = (t: number, windowMs: number) => (Math.floor(t / windowMs) + 1) * windowMs - t;
  const store: RateLimiter = {
    async hit(group, counters, at) {
      const t = at ?? now();
      return counters.map(({ field, limit, windowMs }) => {
        const key = windowKey(group, windowMs, t);
        const counts = windows.get(key) ?? new Map<string, number>();
        const count = (counts.get(field) ?? 0) + 1;
        counts.set(field, count);
        windows.set(key, counts, remainingMs(t, windowMs));
        return count <= limit ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: remainingMs(t, windowMs) };
      });
    },
    async refund(group, counters, at) {
      // In place: the window keeps its expiry; an expired one has nothing to take back.
      for (const { field, windowMs } of counters) {
        const counts = windows.get(windowKey(group, windowMs, at));
        const count = counts?.get(field) ?? 0;
        if (count > 0) counts!.set(field, count - 1);
      }
    },
    async reset(group, windowsMs) {
      const t = now();
      for (const windowMs of windowsMs) windows.delete(windowKey(group, windowMs, t));
    },
    now,
  };
  return { store, sweep: () => windows.sweep() };
}

function invalidationBus(): InvalidationBus {
  const events = new EventEmitter();
  return {
    async publish(messages) {
      if (messages.length > 0) events.emit("invalidate", messages);
    },
    async subscribe(subscriber) {
      events.on("invalidate", (messages: Invalidation[]) => subscriber.invalidate(messages));
    },
  };
}

function leases(now: () => number): { store: Leases; sweep: () => void } {
  const held = new ExpiringMap<string>(now);
  const store: Leases = {
    async acquire(name, ttlMs) {
      if (held.get(name) !== undefined) return undefined;
      const owner = randomUUID();
      held.set(name, owner, ttlMs);
      return {
        async extend(ttl) {
          if (held.get(name) !== owner) return false;
          held.set(name, owner, ttl);
          return true;
        },
        async release() {
          if (held.get(name) !== owner) return false;
          held.delete(name);
          return true;
        },
      };
    },
  };
  return { store, sweep: () => held.sweep() };
}

export function createMemoryStores(options: { now: () => number }): EphemeralStores {
  const sessions = sessionStore(options.now);
  const tokens = tokenStore(options.now);
  const codes = codeStore(options.now);
  const limiter = rateLimiter(options.now);
  const leased = leases(options.now);
  const sweeper = setInterval(() => [sessions, tokens, codes, limiter, leased].forEach((s) => s.sweep()), 60_000);
  sweeper.unref();
  return {
    sessions: sessions.store,
    tokens: tokens.store,
    codes: codes.store,
    rateLimiter: limiter.store,
    invalidation: invalidationBus(),
    leases: leased.store,
    ping: async () => true,
    close: async () => clearInterval(sweeper),
  };
}
