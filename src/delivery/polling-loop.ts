// The loop every delivery worker runs (the outbox's mail, webhooks): passes
// chained so they never overlap, a poll interval, a nudge that wakes it early,
// and "go again at once" after a pass that found more work than it could take.
export interface PollingLoop {
  start(): void;
  /** Runs one pass now (after any pass under way); resolves with what it did. */
  runOnce(): Promise<number>;
  /** Wakes the loop early (something was queued). */
  nudge(): void;
  /** Stops the loop and waits for the pass under way. */
  stop(): Promise<void>;
}

/**
 * `pass` returns how much it did; `again(done)` says whether to go again at once
 * (a full batch suggests more is due). Errors of a timed pass go to `onError`
 * and the loop tries again after the interval.
 */
export function createPollingLoop(options: {
  pass: () => Promise<number>;
  pollIntervalMs: number;
  again: (done: number) => boolean;
  onError: (error: unknown) => void;
}): PollingLoop {
  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  let wakeAgain = false;
  // Every pass (timer or runOnce) is chained on this, so passes never overlap.
  let chain: Promise<unknown> = Promise.resolve();

  function runOnce(): Promise<number> {
    const result = chain.then(options.pass);
    chain = result.catch(() => {});
    return result;
  }

  function schedule(delayMs: number): void {
    if (!running) return;
    clearTimeout(timer);
    timer = setTimeout(tick, delayMs);
    timer.unref(); // never keeps the process alive on its own
  }

  async function tick(): Promise<void> {
    timer = undefined;
    ticking = true;
    wakeAgain = false;
    let done = 0;
    try {
      done = await runOnce();
    } catch (error) {
      options.onError(error); // e.g. the database is down; try again next poll
    }
    ticking = false;
    schedule(wakeAgain || options.again(done) ? 0 : options.pollIntervalMs);
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule(0);
    },
    runOnce,
    nudge() {
      if (ticking) wakeAgain = true;
      else schedule(0);
    },
    async stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
      await chain;
    },
  };
}
