// Fault injection in front of the ephemeral stores: while `failing`, the calls
// that end sessions (listing, deleting, publishing invalidations) throw the
// error a dropped Redis connection gives, as if Redis went away right after a
// change committed in the database. Reads and writes of single sessions keep
// working, so a session the change should have ended is still found in the
// store: the harshest case for a revocation that was never carried out.
import type { Invalidation } from "../../src/domain/ports/invalidation.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";

export interface SessionStoreFaults {
  /** Makes the revoking calls fail (true) or pass through (false). */
  failing: boolean;
  /** Makes only the invalidation publish fail: the store deletes succeed, their announcement does not. */
  failingPublish: boolean;
  /** How many calls failed so far. */
  failures: number;
  wrap(stores: EphemeralStores): EphemeralStores;
}

export function sessionStoreFaults(): SessionStoreFaults {
  const faults: SessionStoreFaults = {
    failing: false,
    failingPublish: false,
    failures: 0,
    wrap(stores) {
      const guard =
        <A extends unknown[], R>(call: (...args: A) => Promise<R>, publish = false) =>
        async (...args: A): Promise<R> => {
          if (faults.failing || (publish && faults.failingPublish)) {
            faults.failures++;
            throw Object.assign(new Error("Connection is closed."), { code: "ECONNRESET" });
          }
          return call(...args);
        };
      const { sessions, invalidation } = stores;
      return {
        ...stores,
        sessions: {
          ...sessions,
          listForAccount: guard((accountId: string) => sessions.listForAccount(accountId)),
          delete: guard((accountId: string, tokenHash: string) => sessions.delete(accountId, tokenHash)),
          deleteAllForAccount: guard((accountId: string, keep?: string) => sessions.deleteAllForAccount(accountId, keep)),
        },
        invalidation: { ...invalidation, publish: guard((messages: readonly Invalidation[]) => invalidation.publish(messages), true) },
      };
    },
  };
  return faults;
}
