// The published session validator (packages/client/src/validator.ts) measured
// against the running service: validations per second answered in the calling
// process, and how long a sign-out takes to reach two connected validators (one
// over gRPC, one over Connect) through SessionService/WatchRevocations.
import { createSessionValidator, type SessionValidator } from "../packages/client/src/validator.ts";

export interface ValidatorBench {
  /** validate() calls answered per second from the cache, one caller awaiting each. */
  perS: number;
  /** From sending SignOut to the second validator dropping the session, per sample (ms). */
  delaysMs: number[];
  /** SignOut round trips (ms), for comparison: the delay includes one. */
  signOutMs: number[];
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
export const median = (values: number[]) => percentile(values, 50);
export const p99 = (values: number[]) => percentile(values, 99);

export async function benchValidator(options: {
  base: string;
  apiKey: string;
  /** A live session to validate in the loop. */
  sessionToken: string;
  /** Live sessions, one per revocation sample (each is signed out). */
  samples: string[];
  seconds: number;
  signOut: (sessionToken: string) => Promise<void>;
}): Promise<ValidatorBench> {
  const waiters = new Map<SessionValidator, () => void>();
  const make = (protocol: "grpc" | "connect") => {
    const validator: SessionValidator = createSessionValidator({
      baseUrl: options.base,
      apiKey: options.apiKey,
      protocol,
      onRevocation: () => waiters.get(validator)?.(),
    });
    return validator;
  };
  const validators = [make("grpc"), make("connect")];
  try {
    for (const v of validators) if (!(await v.live(10_000))) throw new Error("the validator's revocation stream did not come up");

    // 1. Validations per second in this process.
    const [first] = validators as [SessionValidator];
    await first.validate(options.sessionToken);
    if (first.size !== 1) throw new Error("the validator did not cache the session");
    let calls = 0;
    const started = performance.now();
    const until = started + options.seconds * 1000;
    while (performance.now() < until) {
      for (let i = 0; i < 10_000; i++) await first.validate(options.sessionToken);
      calls += 10_000;
    }
    const perS = calls / ((performance.now() - started) / 1000);

    // 2. Revocation delay: each sample cached by both validators, then signed out.
    const delaysMs: number[] = [];
    const signOutMs: number[] = [];
    for (const token of options.samples) {
      for (const v of validators) await v.validate(token);
      const dropped = validators.map(
        (v) =>
          new Promise<number>((resolve) => {
            const sizeBefore = v.size;
            waiters.set(v, () => {
              if (v.size < sizeBefore) {
                waiters.delete(v);
                resolve(performance.now());
              }
            });
          }),
      );
      const sent = performance.now();
      await options.signOut(token);
      signOutMs.push(performance.now() - sent);
      const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(Infinity), 5000).unref());
      const arrived = await Promise.all(dropped.map((d) => Promise.race([d, timeout])));
      delaysMs.push(Math.max(...arrived) - sent);
      for (const v of validators) waiters.delete(v);
    }
    return { perS, delaysMs, signOutMs };
  } finally {
    for (const v of validators) v.close();
  }
}
