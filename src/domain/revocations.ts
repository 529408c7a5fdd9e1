// Revocation that survives a failing session store: a change that must end
// sessions queues a PendingRevocation in its own transaction, settles it at once
// when it can, and every instance refuses and retries what is still queued.
// Guarantees and bounds: docs/revocation.md.
import type { PendingRevocation, RevocationReason, RevocationStore } from "./ports/revocations.ts";
import type { Sessions } from "./sessions.ts";

/** Pending revocations read (refused and carried out) per pass of the loop. */
const BATCH = 500;

export interface Revocations {
  /**
   * After a committed change: carries out the account's pending revocations in
   * the tenant (including any an earlier, failed attempt left). Never throws: what
   * cannot be carried out now stays queued, is refused here at once and retried
   * by the loop. Returns how many sessions ended.
   */
  settle(tenantId: string, accountId: string): Promise<number>;
  /**
   * Ends every session of the account issued until now, durably: queues the
   * revocation, then settles it (so it holds, and never throws, when the session
   * store fails). Returns how many sessions ended now. `keepTokenHash`: a session
   * that stays (the caller's own, for RevokeOtherSessions).
   */
  revokeAll(tenantId: string, accountId: string, reason: RevocationReason, keepTokenHash?: string): Promise<number>;
  /**
   * One pass of the loop: reads the queue (oldest first), refuses everything in
   * it, carries out what it can. Throws only when the queue cannot be read.
   */
  drain(): Promise<{ pending: number; completed: number }>;
}

export interface RevocationDeps {
  store: RevocationStore;
  sessions: Pick<Sessions, "endWhere" | "refuseRevoked">;
  now: () => number;
  /** A revocation of the account's sessions could not be carried out yet (it stays queued); told once per revocation, not on every retry. */
  onDeferred?: (error: unknown, accountId: string) => void;
}

export function createRevocations(deps: RevocationDeps): Revocations {
  // What this instance knows to be pending: the loop's last read plus what failed here since.
  let known = new Map<string, PendingRevocation>();
  const refuse = () => deps.sessions.refuseRevoked([...known.values()]);
  // What failed here, with the number of queue reads started before: a read that started
  // earlier may have missed it (committed after), so only a later one's silence drops it.
  const failedHere = new Map<string, { revocation: PendingRevocation; reads: number }>();
  let readsStarted = 0;

  /** Ends the sessions the revocation names and forgets it; throws when the session store fails. */
  async function carryOut(r: PendingRevocation): Promise<number> {
    const ended = await deps.sessions.endWhere(r.accountId, (session, tokenHash) => session.createdAt <= r.createdAt && tokenHash !== r.keepTokenHash);
    await deps.store.complete(r.id);
    failedHere.delete(r.id);
    if (known.delete(r.id)) refuse();
    return ended;
  }

  // Revocations this instance already reported as deferred: a store down for minutes logs once each, not every second.
  const reported = new Set<string>();

  async function attempt(r: PendingRevocation): Promise<number | undefined> {
    try {
      const ended = await carryOut(r);
      reported.delete(r.id);
      return ended;
    } catch (error) {
      if (!failedHere.has(r.id)) failedHere.set(r.id, { revocation: r, reads: readsStarted });
      if (!known.has(r.id)) {
        known.set(r.id, r);
        refuse();
      }
      if (!reported.has(r.id)) {
        reported.add(r.id);
        deps.onDeferred?.(error, r.accountId);
      }
      return undefined;
    }
  }

  const revocations: Revocations = {
    async settle(tenantId, accountId) {
      let pending: PendingRevocation[];
      try {
        pending = await deps.store.forAccount(tenantId, accountId);
      } catch (error) {
        // Committed all the same: the loop finds it once the database answers again.
        deps.onDeferred?.(error, accountId);
        return 0;
      }
      let ended = 0;
      for (const r of pending) ended += (await attempt(r)) ?? 0;
      return ended;
    },

    async drain() {
      const read = ++readsStarted;
      const pending = await deps.store.listPending(BATCH);
      known = new Map(pending.map((r) => [r.id, r]));
      for (const [id, { revocation, reads }] of failedHere) {
        if (known.has(id)) continue;
        if (reads < read && pending.length < BATCH)
          failedHere.delete(id); // carried out elsewhere
        else known.set(id, revocation);
      }
      for (const id of reported) if (!known.has(id)) reported.delete(id); // carried out elsewhere
      refuse();
      // All at once: with the session store down, a pass costs one command timeout, not one per
      // revocation, so the next read of the queue (what other instances refuse) is never held up.
      const results = await Promise.all(pending.map(attempt));
      return { pending: pending.length, completed: results.filter((r) => r !== undefined).length };
    },

    async revokeAll(tenantId, accountId, reason, keepTokenHash) {
      await deps.store.queue({ tenantId, accountId, at: deps.now(), request: keepTokenHash === undefined ? { reason } : { reason, keepTokenHash } });
      return revocations.settle(tenantId, accountId);
    },
  };
  return revocations;
}

/**
 * Runs `drain` every `intervalMs` until stopped. Every instance runs it: each
 * must refuse what is queued, and carrying a revocation out twice is harmless,
 * so no lease is needed.
 */
export function startRevocationLoop(
  revocations: Pick<Revocations, "drain">,
  options: { intervalMs: number; onError: (error: unknown) => void },
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = revocations
      .drain()
      .then(() => undefined, options.onError)
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.intervalMs);
      });
  };
  timer = setTimeout(tick, 0);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
