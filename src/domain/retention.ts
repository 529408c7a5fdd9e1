// Retention: what each tenant's settings say may be kept, and no longer —
// unverified sign-ups, delivered messages, audit events (as a chain prefix with
// a checkpoint), domain events (as a stream prefix with a watermark). One leased, idempotent, batched job; see docs/privacy.md#retention.
import type { AccountEraser } from "./ports/accounts.ts";
import type { AuditPruner } from "./ports/audit.ts";
import type { EventStore } from "./ports/events.ts";
import type { Leases } from "./ports/leases.ts";
import type { OutboxHistory } from "./ports/outbox.ts";
import type { TenantReader } from "./ports/tenants.ts";
import { forEachTenant } from "./tenants.ts";

/** Rows deleted per query; a step repeats it until nothing more is due. */
const BATCH = 500;
/** Accounts deleted per purge query (each with all its rows, in one transaction). */
const PURGE_BATCH = 100;

export interface RetentionRun {
  unverifiedAccounts: number;
  /** Guest accounts never upgraded, past their tenant's guest_retention. */
  guestAccounts: number;
  deliveredMessages: number;
  auditEvents: number;
  /** Domain events past EVENT_RETENTION_DAYS that no delivery needs any more. */
  events: number;
}

export interface Retention {
  /** Applies every tenant's retention as of `at`; returns what it deleted. */
  run(at: number): Promise<RetentionRun>;
  /** Deletes every sign-up still unverified after its tenant's retention as of `at`; returns how many. */
  purgeUnverified(at: number): Promise<number>;
}

export function createRetention(deps: {
  tenants: TenantReader;
  accounts: Pick<AccountEraser, "purgeUnverified" | "purgeGuests">;
  outbox: Pick<OutboxHistory, "purgeDelivered">;
  audit: AuditPruner;
  events: Pick<EventStore, "purgeDelivered">;
  /** How long domain events are kept (EVENT_RETENTION_DAYS; 0: forever). */
  eventRetentionMs: number;
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

  /** Repeats an account purge until a batch comes back short. */
  async function drainAccounts(step: () => Promise<string[]>): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = (await step()).length;
      total += deleted;
      if (deleted < PURGE_BATCH) return total;
    }
  }

  async function purgeUnverified(at: number): Promise<number> {
    let purged = 0;
    await forEachTenant(deps.tenants, async ({ id, settings }) => {
      if (!(settings.unverifiedRetentionMs > 0)) return; // never due without a positive retention
      for (;;) {
        const deleted = await deps.accounts.purgeUnverified({ tenantId: id, createdBefore: at - settings.unverifiedRetentionMs, limit: PURGE_BATCH });
        purged += deleted.length;
        if (deleted.length < PURGE_BATCH) break;
      }
    });
    return purged;
  }

  return {
    purgeUnverified,
    async run(at) {
      const result: RetentionRun = { unverifiedAccounts: await purgeUnverified(at), guestAccounts: 0, deliveredMessages: 0, auditEvents: 0, events: 0 };
      await forEachTenant(deps.tenants, async ({ id: tenantId, settings }) => {
        if (settings.guestRetentionMs > 0)
          result.guestAccounts += await drainAccounts(() =>
            deps.accounts.purgeGuests({ tenantId, createdBefore: at - settings.guestRetentionMs, limit: PURGE_BATCH, at }),
          );
        result.deliveredMessages += await drain(() =>
          deps.outbox.purgeDelivered({ tenantId, createdBefore: at - settings.deliveredMessageRetentionMs, limit: BATCH }),
        );
        result.auditEvents += await drain(() => deps.audit.prune({ tenantId, before: at - settings.auditEventRetentionMs, limit: BATCH }));
        if (deps.eventRetentionMs > 0)
          result.events += await drain(() => deps.events.purgeDelivered({ tenantId, createdBefore: at - deps.eventRetentionMs, limit: BATCH }));
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
  retention: Pick<Retention, "run">,
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
