// Password hashing with argon2id at or above the OWASP floor. argon2 runs on
// the libuv threadpool (never on the event loop); main.ts sizes the pool to the cores.
import argon2 from "argon2";

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

export function createPasswordHasher(pepper?: Buffer): PasswordHasher {
  const options = pepper ? { ...ARGON2_PARAMS, secret: pepper } : { ...ARGON2_PARAMS };
  let dummyHash: Promise<string> | undefined;
  return {
    hash: (password) => argon2.hash(password, options),
    verify: async (hash, password) => {
      try {
        return await argon2.verify(hash, password, pepper ? { secret: pepper } : {});
      } catch {
        return false; // a malformed stored hash never matches
      }
    },
    needsRehash: (hash) => argon2.needsRehash(hash, options),
    async verifyDummy(password) {
      dummyHash ??= argon2.hash("dummy password for unknown accounts", options);
      await argon2.verify(await dummyHash, password, pepper ? { secret: pepper } : {}).catch(() => false);
    },
  };
}
