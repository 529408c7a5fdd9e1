// A reproducible Random for tests: SHA-256 in counter mode over a seed. The
// same seed gives the same bytes in the same order, so tokens, codes and ids
// made from it can be predicted and compared across runs.
import { createHash } from "node:crypto";
import type { Random } from "../../src/domain/ports/random.ts";

export function seededRandom(seed: string): Random {
  let counter = 0;
  let pool = Buffer.alloc(0);
  return {
    bytes(length) {
      while (pool.length < length) pool = Buffer.concat([pool, createHash("sha256").update(`${seed}:${counter++}`).digest()]);
      const out = pool.subarray(0, length);
      pool = pool.subarray(length);
      return Buffer.from(out);
    },
  };
}

/** A Random that returns the given bytes in order (then zeros): for exact expectations. */
export function scriptedRandom(bytes: number[]): Random {
  const queue = [...bytes];
  return { bytes: (length) => Buffer.from(Array.from({ length }, () => queue.shift() ?? 0)) };
}
