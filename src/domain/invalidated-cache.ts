// One in-process cache for what the hot path reads (sessions, tenant settings,
// API keys): bounded in size and age, invalidated by key or group through the
// bus, and it never stores a read that raced an invalidation nor answers while
// the subscription is down. The promises: createInvalidatedCache.
import type { Invalidation, InvalidationBus } from "./ports/invalidation.ts";

export interface CacheBounds {
  /** Most entries kept. */
  maxEntries: number;
  /** Longest an entry is served without asking the store (bounds a missed invalidation). */
  maxAgeMs: number;
}

interface Entry<V> {
  value: V;
  cachedAt: number;
  groups: readonly string[];
}

export interface InvalidatedCache<V> {
  /** The fresh value cached under `key` (no I/O), else undefined. */
  get(key: string): V | undefined;
  /** The current epoch: take it before reading the store, pass it to set(). */
  epoch(): number;
  /** Caches `value` unless an invalidation landed since `epoch` or the bus is down. */
  set(key: string, value: V, epoch: number, groups?: readonly string[]): void;
  /** Drops one entry. */
  delete(key: string): void;
  /** Drops every entry cached with this group. */
  deleteGroup(group: string): void;
  /** Drops everything. */
  clear(): void;
  /** Whether invalidations are being received; while false nothing is served or stored. */
  setSubscribed(subscribed: boolean): void;
  /** Entries held (for tests and metrics). */
  readonly size: number;
}

/**
 * The cache's promises:
 * - bounded: at most maxEntries (the oldest insertion goes first) and no entry
 *   is served older than maxAgeMs, whatever the bus does;
 * - a read that raced an invalidation is not cached: every invalidation bumps an
 *   epoch, and set() with an epoch taken before the read is dropped if any
 *   invalidation landed in between;
 * - invalidation by key and by group (every session of an account or tenant);
 * - while the subscription is down (messages may be missed) it neither answers
 *   nor stores: callers read the store instead.
 */
export function createInvalidatedCache<V>(bounds: CacheBounds, now: () => number): InvalidatedCache<V> {
  const entries = new Map<string, Entry<V>>();
  const groups = new Map<string, Set<string>>();
  let epoch = 0;
  // True until a subscription says otherwise: an instance that never listens
  // (tests, a single process) relies on maxAgeMs alone.
  let subscribed = true;

  function unlink(key: string, entry: Entry<V>) {
    for (const group of entry.groups) {
      const members = groups.get(group);
      members?.delete(key);
      if (members?.size === 0) groups.delete(group);
    }
  }

  function remove(key: string) {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    unlink(key, entry);
  }

  function clear() {
    epoch++;
    entries.clear();
    groups.clear();
  }

  return {
    get(key) {
      if (!subscribed) return undefined;
      const entry = entries.get(key);
      return entry && now() - entry.cachedAt < bounds.maxAgeMs ? entry.value : undefined;
    },

    epoch: () => epoch,

    set(key, value, at, entryGroups = []) {
      if (at !== epoch || !subscribed || bounds.maxAgeMs <= 0) return;
      remove(key);
      if (entries.size >= bounds.maxEntries) {
        // Map iterates in insertion order: drop the oldest entry.
        const oldest = entries.keys().next();
        if (!oldest.done) remove(oldest.value);
      }
      entries.set(key, { value, cachedAt: now(), groups: entryGroups });
      for (const group of entryGroups) {
        let members = groups.get(group);
        if (!members) groups.set(group, (members = new Set()));
        members.add(key);
      }
    },

    delete(key) {
      epoch++;
      remove(key);
    },

    deleteGroup(group) {
      epoch++;
      for (const key of [...(groups.get(group) ?? [])]) remove(key);
    },

    clear,

    setSubscribed(next) {
      // Either way messages may have been missed: nothing cached before is trusted.
      clear();
      subscribed = next;
    },

    get size() {
      return entries.size;
    },
  };
}

/** The group of everything cached about one account / one tenant. */
export const accountGroup = (accountId: string) => `account:${accountId}`;
export const tenantGroup = (tenantId: string) => `tenant:${tenantId}`;

/**
 * Subscribes `cache` to the bus: `apply` turns each message into deletions;
 * "all" clears it, and a subscription going down or coming back clears it and
 * stops or resumes its answers.
 */
export function listenForInvalidations<V>(bus: InvalidationBus, cache: InvalidatedCache<V>, apply: (message: Invalidation) => void): Promise<void> {
  return bus.subscribe({
    invalidate(messages) {
      for (const message of messages) {
        if (message.kind === "all") cache.clear();
        else apply(message);
      }
    },
    subscribed: (subscribed) => cache.setSubscribed(subscribed),
  });
}
