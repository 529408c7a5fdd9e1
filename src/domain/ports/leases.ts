// Named leases shared by every instance, so one background job runs at a time
// (Redis SET NX PX with an owner token in production, in-process otherwise).

/** A lease taken by acquire(): held until it lapses, is released or lost. */
export interface HeldLease {
  /** Keeps the lease for ttlMs more from now; false (changing nothing) when it is no longer ours. */
  extend(ttlMs: number): Promise<boolean>;
  /** Gives the lease up; false when it was no longer ours (never frees another holder's). */
  release(): Promise<boolean>;
}

/** See ./errors.ts for the errors every method may throw. */
export interface Leases {
  /** Takes the named lease for ttlMs when nobody holds it; undefined when someone does. */
  acquire(name: string, ttlMs: number): Promise<HeldLease | undefined>;
}
