// The one invalidated cache (src/domain/invalidated-cache.ts) behind sessions,
// tenant settings and API keys: its bounds, the epoch check that keeps a read
// racing an invalidation out of it, invalidation by key and by group, and how
// it follows the bus's subscription going down and up.
import { beforeEach, describe, expect, it } from "vitest";
import { createInvalidatedCache, listenForInvalidations, type InvalidatedCache } from "../../src/domain/invalidated-cache.ts";
import type { Invalidation, InvalidationBus, InvalidationSubscriber } from "../../src/domain/ports/invalidation.ts";

let clock = 0;
const now = () => clock;

function cache(maxEntries = 100, maxAgeMs = 1000): InvalidatedCache<string> {
  return createInvalidatedCache<string>({ maxEntries, maxAgeMs }, now);
}

/** A bus whose subscription the test drives by hand. */
function manualBus(): InvalidationBus & { say(...messages: Invalidation[]): void; up(subscribed: boolean): void } {
  const subscribers: InvalidationSubscriber[] = [];
  return {
    publish: async () => {},
    subscribe: async (subscriber) => void subscribers.push(subscriber),
    say: (...messages) => subscribers.forEach((s) => s.invalidate(messages)),
    up: (subscribed) => subscribers.forEach((s) => s.subscribed(subscribed)),
  };
}

beforeEach(() => {
  clock = 1_000_000;
});

describe("the invalidated cache", () => {
  it("answers what was set, until maxAgeMs has passed", () => {
    const c = cache(100, 1000);
    c.set("a", "A", c.epoch());
    expect(c.get("a")).toBe("A");
    clock += 999;
    expect(c.get("a")).toBe("A");
    clock += 1;
    expect(c.get("a")).toBeUndefined();
  });

  it("holds at most maxEntries, dropping the oldest first", () => {
    const c = cache(3);
    for (const key of ["a", "b", "c", "d"]) c.set(key, key.toUpperCase(), c.epoch());
    expect(c.size).toBe(3);
    expect(c.get("a")).toBeUndefined();
    expect(["b", "c", "d"].map((k) => c.get(k))).toStrictEqual(["B", "C", "D"]);
    c.set("b", "B2", c.epoch()); // replacing makes it the newest
    c.set("e", "E", c.epoch());
    expect(c.get("c")).toBeUndefined();
    expect(["b", "d", "e"].map((k) => c.get(k))).toStrictEqual(["B2", "D", "E"]);
  });

  it("caches nothing when maxAgeMs is 0", () => {
    const c = cache(100, 0);
    c.set("a", "A", c.epoch());
    expect(c.get("a")).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it("does not cache a read that raced an invalidation (of any key or group)", () => {
    const c = cache();
    for (const invalidate of [() => c.delete("a"), () => c.delete("other"), () => c.deleteGroup("account:x"), () => c.clear()]) {
      const epoch = c.epoch(); // taken before reading the store
      invalidate(); // lands while the read is in flight
      c.set("a", "A", epoch);
      expect(c.get("a")).toBeUndefined();
    }
    c.set("a", "A", c.epoch()); // a read with no invalidation meanwhile is cached
    expect(c.get("a")).toBe("A");
  });

  it("invalidates by key and by group", () => {
    const c = cache();
    c.set("s1", "one", c.epoch(), ["account:1", "tenant:t"]);
    c.set("s2", "two", c.epoch(), ["account:1", "tenant:t"]);
    c.set("s3", "three", c.epoch(), ["account:2", "tenant:t"]);
    c.set("s4", "four", c.epoch(), ["account:3", "tenant:u"]);
    c.delete("s1");
    expect(["s1", "s2", "s3", "s4"].map((k) => c.get(k))).toStrictEqual([undefined, "two", "three", "four"]);
    c.deleteGroup("account:1");
    expect(["s2", "s3", "s4"].map((k) => c.get(k))).toStrictEqual([undefined, "three", "four"]);
    c.deleteGroup("tenant:t");
    expect(["s3", "s4"].map((k) => c.get(k))).toStrictEqual([undefined, "four"]);
    c.deleteGroup("tenant:nobody");
    expect(c.get("s4")).toBe("four");
  });

  it("a re-cached key leaves the groups it no longer belongs to", () => {
    const c = cache();
    c.set("k", "old", c.epoch(), ["tenant:t"]);
    c.set("k", "new", c.epoch(), ["tenant:u"]);
    c.deleteGroup("tenant:t");
    expect(c.get("k")).toBe("new");
    c.deleteGroup("tenant:u");
    expect(c.get("k")).toBeUndefined();
  });

  it("follows the bus: messages drop entries, 'all' drops everything", async () => {
    const c = cache();
    const bus = manualBus();
    await listenForInvalidations(bus, c, (message) => {
      if (message.kind === "session") message.tokenHashes.forEach((h) => c.delete(h));
      if (message.kind === "account") c.deleteGroup(`account:${message.accountId}`);
    });
    c.set("h1", "1", c.epoch(), ["account:a"]);
    c.set("h2", "2", c.epoch(), ["account:a"]);
    c.set("h3", "3", c.epoch(), ["account:b"]);
    bus.say({ kind: "session", tokenHashes: ["h1"] });
    expect(["h1", "h2", "h3"].map((k) => c.get(k))).toStrictEqual([undefined, "2", "3"]);
    bus.say({ kind: "account", accountId: "a" });
    expect(["h2", "h3"].map((k) => c.get(k))).toStrictEqual([undefined, "3"]);
    bus.say({ kind: "all" });
    expect(c.get("h3")).toBeUndefined();
  });

  it("while the subscription is down it neither answers nor stores; back up, it starts empty", async () => {
    const c = cache();
    const bus = manualBus();
    await listenForInvalidations(bus, c, () => {});
    c.set("a", "A", c.epoch());
    const epoch = c.epoch();
    bus.up(false);
    expect(c.get("a")).toBeUndefined();
    c.set("b", "B", c.epoch());
    c.set("a", "A", epoch);
    expect(c.get("b")).toBeUndefined();
    expect(c.size).toBe(0);
    const before = c.epoch();
    bus.up(true); // messages may have been missed while down
    expect(c.get("a")).toBeUndefined();
    c.set("a", "A", before); // a read from before it came back is not trusted
    expect(c.get("a")).toBeUndefined();
    c.set("a", "A", c.epoch());
    expect(c.get("a")).toBe("A");
  });
});
