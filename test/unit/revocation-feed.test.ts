// What WatchRevocations streams (src/domain/revocation-feed.ts): the bus's
// invalidations fanned out to every watcher, accounts newly pending revocation
// announced once, and every watcher dropped (new ones refused) when the bus
// goes down or the server closes.
import { describe, expect, it } from "vitest";
import type { InvalidationBus, InvalidationSubscriber } from "../../src/domain/ports/invalidation.ts";
import type { PendingRevocation } from "../../src/domain/ports/revocations.ts";
import { createRevocationFeed, type RevocationEvent } from "../../src/domain/revocation-feed.ts";

function fakeBus(): InvalidationBus & { subscriber?: InvalidationSubscriber } {
  const bus: InvalidationBus & { subscriber?: InvalidationSubscriber } = {
    async publish(messages) {
      bus.subscriber?.invalidate(messages);
    },
    async subscribe(subscriber) {
      bus.subscriber = subscriber;
    },
  };
  return bus;
}

function watcher() {
  const events: RevocationEvent[] = [];
  let down = 0;
  return { events, downs: () => down, watcher: { event: (e: RevocationEvent) => void events.push(e), down: () => void down++ } };
}

const pending = (accountId: string): PendingRevocation => ({
  id: `r-${accountId}`,
  tenantId: "t",
  accountId,
  reason: "sessions_revoked",
  createdAt: 1,
  keepTokenHash: null,
});

describe("revocation feed", () => {
  it("fans every invalidation out to every watcher, in order, until it stops watching", async () => {
    const bus = fakeBus();
    const feed = createRevocationFeed(bus);
    await feed.listen();
    const [a, b] = [watcher(), watcher()];
    feed.watch(a.watcher);
    const stopB = feed.watch(b.watcher);
    expect(feed.watchers).toBe(2);
    await bus.publish([{ kind: "session", tokenHashes: ["h1"] }, { kind: "account", accountId: "acc" }, { kind: "tenant", tenantId: "t" }, { kind: "all" }]);
    const expected: RevocationEvent[] = [
      { kind: "sessions", tokenHashes: ["h1"] },
      { kind: "account", accountId: "acc" },
      { kind: "tenant", tenantId: "t" },
      { kind: "reset" },
    ];
    expect(a.events).toStrictEqual(expected);
    expect(b.events).toStrictEqual(expected);
    stopB();
    await bus.publish([{ kind: "apiKey", secretHash: "k" }]);
    expect(a.events.at(-1)).toStrictEqual({ kind: "apiKey", secretHash: "k" });
    expect(b.events).toHaveLength(4);
  });

  it("announces an account once when its revocation becomes pending (the session store failing), again only after it was settled", async () => {
    const feed = createRevocationFeed(fakeBus());
    await feed.listen();
    const w = watcher();
    feed.watch(w.watcher);
    feed.pending([pending("a1")]);
    feed.pending([pending("a1"), pending("a2")]);
    feed.pending([pending("a2")]);
    feed.pending([pending("a1"), pending("a2")]);
    expect(w.events).toStrictEqual([
      { kind: "account", accountId: "a1" },
      { kind: "account", accountId: "a2" },
      { kind: "account", accountId: "a1" },
    ]);
  });

  it("drops every watcher when the bus goes down and refuses new ones until it is back; close does the same for good", async () => {
    const bus = fakeBus();
    const feed = createRevocationFeed(bus);
    await feed.listen();
    const w = watcher();
    feed.watch(w.watcher);
    bus.subscriber!.subscribed(false);
    expect([w.downs(), feed.watchers, feed.live]).toStrictEqual([1, 0, false]);
    expect(() => feed.watch(watcher().watcher)).toThrow(expect.objectContaining({ kind: "unavailable", reason: "REVOCATIONS_UNAVAILABLE" }));
    bus.subscriber!.subscribed(true);
    const again = watcher();
    feed.watch(again.watcher);
    expect(feed.watchers).toBe(1);
    feed.close();
    expect([again.downs(), feed.watchers]).toStrictEqual([1, 0]);
    expect(() => feed.watch(watcher().watcher)).toThrow(expect.objectContaining({ reason: "REVOCATIONS_UNAVAILABLE" }));
  });
});
