// Runs the EphemeralStores contract against the in-process memory store and,
// when Redis is reachable (it goes with MySQL; always in CI), against Redis under
// a key prefix of its own, so runs and suites can share one server.
import { Redis } from "ioredis";
import { describe, expect, it, vi } from "vitest";
import { describeEphemeralStores } from "./ephemeral-stores.contract.ts";
import { BACKENDS, REDIS_URL, redisPrefix } from "../support/backends.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";
import { createRedisStores } from "../../src/store/redis/stores.ts";

describeEphemeralStores("memory", async (now) => {
  const stores = createMemoryStores({ now });
  return { stores, close: () => stores.close() };
});

/** Removes every key under `prefix` (sessions are stored for an hour in the suite). */
async function deleteKeys(prefix: string): Promise<void> {
  const keys = await scanKeys(prefix);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
  } finally {
    await redis.quit();
  }
}

if (BACKENDS.includes("mysql")) {
  describeEphemeralStores("redis", async (now) => {
    const keyPrefix = redisPrefix();
    const open = () => createRedisStores(REDIS_URL, { now, keyPrefix });
    const instances: EphemeralStores[] = [open()];
    return {
      stores: instances[0]!,
      async openPeer() {
        const peer = open();
        instances.push(peer);
        return peer;
      },
      async close() {
        await Promise.all(instances.map((s) => s.close()));
        await deleteKeys(keyPrefix);
      },
    };
  });
}

if (BACKENDS.includes("mysql")) {
  describe("redis rate limiter", () => {
    it("counts a group's tiers in one command, on keys of one hash slot (Redis Cluster)", async () => {
      const keyPrefix = redisPrefix();
      const stores = createRedisStores(REDIS_URL, { now: () => Date.UTC(2030, 0, 1, 0, 59), keyPrefix });
      // Every command this process sends goes through sendCommand: count those on our keys.
      const seen: string[] = [];
      const send = Redis.prototype.sendCommand;
      const spy = vi.spyOn(Redis.prototype, "sendCommand").mockImplementation(function (this: Redis, command, stream) {
        if (command.args.some((a) => String(a).startsWith(keyPrefix))) seen.push(command.name);
        return send.call(this, command, stream);
      });
      try {
        await stores.ping(); // connected before counting
        const counters = [15, 60, 1440].flatMap((minutes) => [
          { field: "ip:2001:db8::7", limit: 10, windowMs: minutes * 60_000 },
          { field: "", limit: 10, windowMs: minutes * 60_000 },
        ]);
        await stores.rateLimiter.hit("t1:sign_in_account:abc", counters);
        expect(seen).toEqual(["eval"]);
        const keys = await scanKeys(keyPrefix);
        expect(keys).toHaveLength(3); // one per window, a field per counter
        expect(new Set(keys.map((key) => /\{([^}]*)\}/.exec(key)?.[1]))).toEqual(new Set(["t1:sign_in_account:abc"]));
      } finally {
        spy.mockRestore();
        await stores.close();
        await deleteKeys(keyPrefix);
      }
    });
  });
}

/** Every key under `prefix`. */
async function scanKeys(prefix: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const found: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      found.push(...keys);
      cursor = next;
    } while (cursor !== "0");
    return found;
  } finally {
    await redis.quit();
  }
}
