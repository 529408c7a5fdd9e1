// Password hashing with argon2id at or above the OWASP floor. argon2 runs on
// the libuv threadpool (never on the event loop); main.ts sizes the pool to the cores.
import argon2 from "argon2";
import { availableParallelism } from "node:os";

/** OWASP 2023 floor for argon2id: 19 MiB, 2 iterations, 1 lane. */
export const ARGON2_PARAMS = { type: argon2.argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 } as const;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** True when the password matches. */
  verify(hash: string, password: string): Promise<boolean>;
  /** True when the stored hash used weaker parameters than today's and should be replaced. */
  needsRehash(hash: string): boolean;
  /** Burns the same time as a verification, for unknown accounts (no timing oracle). */
  verifyDummy(password: string): Promise<void>;
}

export interface PasswordHasherOptions {
  /**
   * At most this many argon2 computations at once in this process; the rest wait
   * in order. Hashes beyond the cores only thrash each other's 19 MiB and the CPU
   * caches (and hold threadpool threads other work needs), so the service gives
   * each worker its share of the cores. Default: every core.
   */
  maxConcurrent?: number;
  /** The argon2 implementation (tests count what runs at once through it). */
  argon2?: Pick<typeof argon2, "hash" | "verify" | "needsRehash">;
}

/** A counting semaphore: `run` starts at most `limit` tasks at once, first come first served. */
export function createLimiter(limit: number) {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`hash concurrency must be a positive integer, got ${limit}`);
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next)
      next(); // the slot passes straight to the next task
    else running--;
  };
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running < limit) running++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}

export function createPasswordHasher(
  pepper?: Buffer,
  { maxConcurrent = availableParallelism(), argon2: impl = argon2 }: PasswordHasherOptions = {},
): PasswordHasher {
  const options = pepper ? { ...ARGON2_PARAMS, secret: pepper } : { ...ARGON2_PARAMS };
  const limiter = createLimiter(maxConcurrent);
  const verifyRaw = (hash: string, password: string) => limiter.run(() => impl.verify(hash, password, pepper ? { secret: pepper } : {}));
  let dummyHash: Promise<string> | undefined;
  return {
    hash: (password) => limiter.run(() => impl.hash(password, options)),
    verify: async (hash, password) => {
      try {
        return await verifyRaw(hash, password);
      } catch {
        return false; // a malformed stored hash never matches
      }
    },
    needsRehash: (hash) => impl.needsRehash(hash, options),
    async verifyDummy(password) {
      dummyHash ??= limiter.run(() => impl.hash("dummy password for unknown accounts", options));
      await verifyRaw(await dummyHash, password).catch(() => false);
    },
  };
}
