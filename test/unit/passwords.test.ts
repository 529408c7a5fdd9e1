import argon2 from "argon2";
import { describe, expect, it } from "vitest";
import { createLimiter, createPasswordHasher } from "../../src/crypto/passwords.ts";

/** An argon2 stand-in that records how many computations run at once (each takes `ms`). */
function countingArgon2(ms = 5) {
  let running = 0;
  let peak = 0;
  const track = async <T>(value: T): Promise<T> => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, ms));
    running--;
    return value;
  };
  return {
    impl: {
      hash: (password: string) => track(`hashed:${password}`),
      verify: (hash: string, password: string) => track(hash === `hashed:${password}`),
      needsRehash: () => false,
    } as unknown as Pick<typeof argon2, "hash" | "verify" | "needsRehash">,
    peak: () => peak,
  };
}

describe("password hashing concurrency", () => {
  it("runs at most maxConcurrent hashes and verifications at once, and every one completes", async () => {
    const fake = countingArgon2();
    const hasher = createPasswordHasher(undefined, { maxConcurrent: 2, argon2: fake.impl });
    const results = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => hasher.hash(`p${i}`)),
      ...Array.from({ length: 10 }, (_, i) => hasher.verify(`hashed:p${i}`, `p${i}`)),
      ...Array.from({ length: 5 }, () => hasher.verifyDummy("anything").then(() => "dummy")),
    ]);
    expect(fake.peak()).toBe(2);
    expect(results.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `hashed:p${i}`));
    expect(results.slice(10, 20)).toEqual(Array(10).fill(true));
  });

  it("frees the slot of a computation that throws (a malformed hash) and answers false", async () => {
    const hasher = createPasswordHasher(undefined, { maxConcurrent: 1 });
    expect(await hasher.verify("not an argon2 hash", "x")).toBe(false);
    expect(await hasher.verify("$argon2id$nonsense", "x")).toBe(false);
    const hash = await hasher.hash("correct horse battery staple");
    expect(await hasher.verify(hash, "correct horse battery staple")).toBe(true);
    expect(await hasher.verify(hash, "wrong")).toBe(false);
  });

  it("bounds real argon2 calls too: with a limit of 1 no two overlap", async () => {
    let running = 0;
    let peak = 0;
    const counted = {
      hash: async (...args: Parameters<typeof argon2.hash>) => {
        running++;
        peak = Math.max(peak, running);
        try {
          return await argon2.hash(...args);
        } finally {
          running--;
        }
      },
      verify: argon2.verify,
      needsRehash: argon2.needsRehash,
    } as unknown as Pick<typeof argon2, "hash" | "verify" | "needsRehash">;
    const hasher = createPasswordHasher(undefined, { maxConcurrent: 1, argon2: counted });
    await Promise.all(Array.from({ length: 4 }, (_, i) => hasher.hash(`password ${i}`)));
    expect(peak).toBe(1);
  });

  it("passes the slot on in arrival order and refuses a nonsensical limit", async () => {
    const limiter = createLimiter(1);
    const order: number[] = [];
    await Promise.all(
      [3, 1, 2].map((delay, i) =>
        limiter.run(async () => {
          await new Promise((r) => setTimeout(r, delay));
          order.push(i);
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2]);
    expect(() => createLimiter(0)).toThrow(/positive integer/);
    expect(() => createLimiter(1.5)).toThrow(/positive integer/);
  });
});
