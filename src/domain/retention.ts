// Retention: what each tenant's settings say may be kept, and no longer.
// - Unverified sign-ups older than unverifiedRetentionMs: deleted with everything
//   about them (RecoveryFlows.purgeExpiredUnverified).
// - Delivered messages: outbox rows sent or given up on longer ago than
//   deliveredMessageRetentionMs (their payload was already dropped on delivery).
// - Audit events older than auditEventRetentionMs — security events (sign-ins,
//   sign-ups, verifications, rate-limit hits) and admin events alike: each
//   tenant's trail is one hash chain, so the oldest events go as a prefix and a
//   checkpoint (the last deleted event's sequence and hash) keeps the rest
//   verifiable (src/domain/audit.ts starts from it).
// - Sessions are not stored durably: Redis expires each one at its idle or
//   absolute expiry by itself (the in-process store sweeps expired ones every minute).
//
// One job runs it all every intervalMs. Every step is an idempotent batch delete,
// safe with several instances; a lease named after the interval's window (one
// run per window, whoever takes it first) spares the others the work.
import type { Leases } from "./ports/leases.ts";
import type { DurableStores } from "./ports/stores.ts";
import type { RecoveryFlows } from "./recovery.ts";
import { forEachTenant } from "./tenants.ts";

/** Rows deleted per query; a step repeats it until nothing more is due. */
const BATCH = 500;

export interface RetentionRun {
  unverifiedAccounts: number;
  deliveredMessages: number;
  auditEvents: number;
}

export interface Retention {
  /** Applies every tenant's retention as of `at`; returns what it deleted. */
  run(at: number): Promise<RetentionRun>;
}

export function createRetention(deps: {
  durable: Pick<DurableStores, "tenants" | "outbox" | "audit">;
  recovery: Pick<RecoveryFlows, "purgeExpiredUnverified">;
}): Retention {
  /** Repeats a batch delete until a batch comes back short. */
  async function drain(step: () => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await step();
      total += deleted;
      if (deleted < BATCH) return total;
    }
  }

  return {
    async run(at) {
      const result: RetentionRun = { unverifiedAccounts: await deps.recovery.purgeExpiredUnverified(at), deliveredMessages: 0, auditEvents: 0 };
      await forEachTenant(deps.durable.tenants, async ({ id: tenantId, settings }) => {
        result.deliveredMessages += await drain(() => deps.durable.outbox.purgeDelivered({ tenantId, createdBefore: at - settings.deliveredMessageRetentionMs, limit: BATCH }));
        result.auditEvents += await drain(() => deps.durable.audit.prune({ tenantId, before: at - settings.auditEventRetentionMs, limit: BATCH }));
      });
      return result;
    },
  };
}

/**
 * Runs retention every `intervalMs` (unref'd: it never keeps the process alive;
 * a run still going skips the next tick) until stop(), which waits for a run in
 * progress. With `lease`, only the first instance to take it in an interval
 * runs; the others skip that tick.
 */
export function startRetention(
  retention: Retention,
  options: {
    intervalMs: number;
    now: () => number;
    lease?: Leases;
    onRun: (result: RetentionRun) => void;
    onError: (error: unknown) => void;
  },
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const tick = async () => {
    // Never released: the lease of this window is what tells the other instances it ran.
    const window = Math.floor(options.now() / options.intervalMs);
    if (options.lease && !(await options.lease.acquire(`retention:${window}`, options.intervalMs))) return;
    options.onRun(await retention.run(options.now()));
  };
  const timer = setInterval(() => {
    running ??= tick()
      .catch(options.onError)
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
