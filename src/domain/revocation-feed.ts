// What WatchRevocations streams: the invalidations every instance already hears
// on its bus (Redis pub/sub, or the in-process emitter of the embedded default),
// fanned out to the streams open on this instance, plus the accounts whose
// revocation is still pending (a failing session store: the revocation loop's
// view, src/domain/revocations.ts), so a validator in another process refuses
// what this instance refuses. One bus subscription per instance, whatever the
// number of streams.
import { DomainError } from "./errors.ts";
import type { Invalidation, InvalidationBus } from "./ports/invalidation.ts";
import type { PendingRevocation } from "./ports/revocations.ts";

export type RevocationEvent =
  | { kind: "sessions"; tokenHashes: readonly string[] }
  | { kind: "account"; accountId: string }
  | { kind: "tenant"; tenantId: string }
  | { kind: "apiKey"; secretHash: string }
  | { kind: "reset" };

export interface RevocationWatcher {
  /** One event, in the order the bus delivered it. */
  event(event: RevocationEvent): void;
  /** The bus went down: events may be missed from now on. The watcher is dropped. */
  down(): void;
}

export interface RevocationFeed {
  /** Whether this instance receives invalidations now. */
  readonly live: boolean;
  /** Open watchers (for metrics and tests). */
  readonly watchers: number;
  /** Delivers events to `watcher` until the returned function is called or the bus goes down; unavailable (REVOCATIONS_UNAVAILABLE) when not live. */
  watch(watcher: RevocationWatcher): () => void;
  /** The revocation loop's pending revocations: accounts new to the list are announced as account events. */
  pending(revocations: readonly PendingRevocation[]): void;
  /** Subscribes to the bus (once, at start). */
  listen(): Promise<void>;
  /** Ends every watcher (shutdown: a stream never finishes by itself) and refuses new ones. */
  close(): void;
}

function toEvent(message: Invalidation): RevocationEvent {
  switch (message.kind) {
    case "session":
      return { kind: "sessions", tokenHashes: message.tokenHashes };
    case "account":
      return { kind: "account", accountId: message.accountId };
    case "tenant":
      return { kind: "tenant", tenantId: message.tenantId };
    case "apiKey":
      return { kind: "apiKey", secretHash: message.secretHash };
    case "all":
      return { kind: "reset" };
  }
}

export function createRevocationFeed(bus: InvalidationBus): RevocationFeed {
  const watchers = new Set<RevocationWatcher>();
  // True until the bus says otherwise (the in-process bus never goes down).
  let live = true;
  let pendingAccounts = new Set<string>();
  let closed = false;

  function dropAll() {
    const dropped = [...watchers];
    watchers.clear();
    for (const watcher of dropped) watcher.down();
  }

  function emit(event: RevocationEvent) {
    for (const watcher of watchers) watcher.event(event);
  }

  return {
    get live() {
      return live;
    },
    get watchers() {
      return watchers.size;
    },
    watch(watcher) {
      if (!live || closed)
        throw new DomainError("unavailable", "REVOCATIONS_UNAVAILABLE", "revocations cannot be received now; retry later", { retryAfterMs: 1000 });
      watchers.add(watcher);
      return () => void watchers.delete(watcher);
    },
    pending(revocations) {
      const next = new Set(revocations.map((r) => r.accountId));
      for (const accountId of next) if (!pendingAccounts.has(accountId)) emit({ kind: "account", accountId });
      pendingAccounts = next;
    },
    listen: () =>
      bus.subscribe({
        invalidate(messages) {
          for (const message of messages) emit(toEvent(message));
        },
        subscribed(subscribed) {
          live = subscribed;
          if (!subscribed) dropAll();
        },
      }),
    close() {
      closed = true;
      dropAll();
    },
  };
}
