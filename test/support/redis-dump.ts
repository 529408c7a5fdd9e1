// What a test server keeps in the shared Redis, read raw: the "nothing in clear at rest" scans.
import { Redis } from "ioredis";
import { REDIS_URL } from "./backends.ts";

/** Every key under `prefix` (a test server's) with its value (strings, hashes, sets, lists), as one text. */
export async function redisDump(prefix: string): Promise<string> {
  return (await redisEntries(prefix)).map(({ text }) => `${text}\n`).join("");
}

/** Every key under `prefix` with its value, one entry a key (a scan can then say where it found something). */
export async function redisEntries(prefix: string): Promise<{ key: string; text: string }[]> {
  const redis = new Redis(REDIS_URL);
  try {
    const entries: { key: string; text: string }[] = [];
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
        entries.push({ key, text: `${key} ${JSON.stringify(value)}` });
      }
    } while (cursor !== "0");
    return entries;
  } finally {
    redis.disconnect();
  }
}
