// Randomness is a dependency beside the clock: every token, code and id the
// domain makes draws from one, so a test can make them reproducible. Wiring
// passes the CSPRNG (src/crypto/random.ts).

export interface Random {
  /** `length` random bytes; in production from the CSPRNG. Never throws. */
  bytes(length: number): Buffer;
}
