// Runs the EphemeralStores contract against the in-process memory store and,
// when Redis is reachable (it goes with MySQL; always in CI), against Redis under
// a key prefix of its own, so runs and suites can share one server.
import { Redis } from "ioredis";
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
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
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
