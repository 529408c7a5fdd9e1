// What a test server keeps in the shared Redis, read raw: the "nothing in clear at rest" scans.
import { Redis } from "ioredis";
import { REDIS_URL } from "./backends.ts";

/** Every key under `prefix` (a test server's) with its value (strings, hashes, sets, lists), as one text. */
export async function redisDump(prefix: string): Promise<string> {
  const redis = new Redis(REDIS_URL);
  try {
    let dump = "";
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        const value =
          type === "string"
            ? await redis.get(key)
            : type === "hash"
              ? await redis.hgetall(key)
              : type === "set"
                ? await redis.smembers(key)
                : type === "zset"
                  ? await redis.zrange(key, 0, -1)
                  : type === "list"
                    ? await redis.lrange(key, 0, -1)
                    : `(${type})`;
        dump += `${key} ${JSON.stringify(value)}\n`;
      }
    } while (cursor !== "0");
    return dump;
  } finally {
    redis.disconnect();
  }
}
