// The background purge of unverified sign-ups: when it runs, that runs never
// overlap, that stop() waits for a run in progress, and that it never keeps
// the process alive. (What a run deletes is tested end to end in
// test/integration/recovery.test.ts and in the store contract.)
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { startUnverifiedPurge } from "../../src/domain/recovery.ts";

describe("startUnverifiedPurge", () => {
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
    const job = startUnverifiedPurge(
      {
        purgeExpiredUnverified: async (at) => {
          calls.push(at);
          const next = results.shift() ?? 0;
          if (next instanceof Error) throw next;
          return next;
        },
      },
      { intervalMs: 60_000, now: () => clock, onPurged: (n) => purged.push(n), onError: (e) => errors.push(e) },
    );
    return { job, calls, purged, errors, setClock: (t: number) => (clock = t) };
  }

  it("runs once per interval with the clock's time, reports only runs that purged something, and survives errors", async () => {
    const boom = new Error("database down");
    const h = harness([3, 0, boom, 2]);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(h.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toEqual([1_000]);
    h.setClock(5_000);
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    expect(h.calls).toEqual([1_000, 5_000, 5_000, 5_000]);
    expect(h.purged).toEqual([3, 2]);
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
