// The background retention job (it began as the purge of unverified sign-ups):
// when it runs, that runs never overlap, that stop() waits for a run in progress,
// that it never keeps the process alive, and that with a lease one instance runs
// per interval. (What a run deletes: test/integration/retention.test.ts.)
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startRetention, type RetentionRun } from "../../src/domain/retention.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";

const deleted = (n: number): RetentionRun => ({ unverifiedAccounts: n, guestAccounts: 0, deliveredMessages: 0, auditEvents: 0, events: 0 });

describe("startRetention", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function harness(results: Array<number | Error | Promise<number>>) {
    const calls: number[] = [];
    const purged: number[] = [];
    const errors: unknown[] = [];
    let clock = 1_000;
    const job = startRetention(
      {
        run: async (at) => {
          calls.push(at);
          const next = results.shift() ?? 0;
          if (next instanceof Error) throw next;
          return deleted(await next);
        },
      },
      { intervalMs: 60_000, now: () => clock, onRun: (r) => purged.push(r.unverifiedAccounts), onError: (e) => errors.push(e) },
    );
    return { job, calls, purged, errors, setClock: (t: number) => (clock = t) };
  }

  it("runs once per interval with the clock's time, reports each run, and survives errors", async () => {
    const boom = new Error("database down");
    const h = harness([3, 0, boom, 2]);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(h.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toEqual([1_000]);
    h.setClock(5_000);
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    expect(h.calls).toEqual([1_000, 5_000, 5_000, 5_000]);
    expect(h.purged).toEqual([3, 0, 2]);
    expect(h.errors).toEqual([boom]);
    await h.job.stop();
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(h.calls).toHaveLength(4);
  });

  it("skips a tick while a run is still going, and stop() waits for that run", async () => {
    let finish!: (n: number) => void;
    const slow = new Promise<number>((resolve) => (finish = resolve));
    const h = harness([slow, 1]);
    await vi.advanceTimersByTimeAsync(60_000);
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    expect(h.calls).toHaveLength(1); // the second and third ticks found the first still running

    let stopped = false;
    const stopping = h.job.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finish(5);
    await stopping;
    expect(h.purged).toEqual([5]);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(h.calls).toHaveLength(1);
  });

  it("with a lease, runs on one instance per interval", async () => {
    let clock = 0;
    const lease = createMemoryStores({ now: () => clock }).leases;
    const runs: string[] = [];
    const jobs = ["a", "b", "c"].map((name) =>
      startRetention(
        { run: async () => (runs.push(name), deleted(0)) },
        { intervalMs: 60_000, now: () => clock, lease, onRun: () => {}, onError: (e) => runs.push(String(e)) },
      ),
    );
    for (let tick = 1; tick <= 3; tick++) {
      clock = tick * 60_000 + 1;
      await vi.advanceTimersByTimeAsync(60_000);
    }
    expect(runs).toHaveLength(3);
    for (const job of jobs) await job.stop();
  });

  it("does not keep the process alive", async () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, "setInterval");
    const h = harness([]);
    const timer = spy.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    spy.mockRestore();
    await h.job.stop();
  });
});
