// Delivers queued messages: lease due rows, open, render, send, then record
// the outcome. Delivery is at least once: a send whose markSent is lost (crash,
// database error) is sent again when its lease expires.
import type { ClaimedMessage, OutboxStore } from "../domain/ports/outbox.ts";
import { renderMessage } from "./templates.ts";
import type { MessagePayload } from "../domain/messages.ts";
import type { MailTransport, RenderedMessage } from "./types.ts";

export interface OutboxWorkerOptions {
  outbox: OutboxStore;
  /** Decrypts a claimed message; undefined when it can no longer be opened (account erased) → the message is dropped as failed without retry. */
  openPayload(message: ClaimedMessage): Promise<MessagePayload | undefined>;
  transport: MailTransport;
  productName: string;
  now: () => number;
  owner: string; // unique per process, e.g. `${hostname}:${pid}:${random}`
  pollIntervalMs?: number; // default 1000
  leaseMs?: number; // default 60_000
  batchSize?: number; // default 20
  maxAttempts?: number; // default 8
  backoffMs?: (attempt: number) => number; // default exponential 2^attempt * 1000 capped at 1h, with jitter
  onError?: (error: unknown, message?: ClaimedMessage) => void;
}

export interface OutboxWorker {
  start(): void;
  /** Runs one claim-and-send pass now; resolves with how many were sent. */
  runOnce(): Promise<number>;
  /** Wakes the loop early (called after a message is enqueued). */
  nudge(): void;
  stop(): Promise<void>;
}

/** 2^attempt seconds capped at an hour, between half and all of it so retries spread out. */
function defaultBackoff(attempt: number): number {
  const base = Math.min(2 ** attempt * 1000, 3_600_000);
  return Math.round(base / 2 + (Math.random() * base) / 2);
}

/** Error text for last_error: no addresses, since it outlives the payload. */
function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/[^\s<>()"'@]+@[^\s<>()"']+/g, "<address>").slice(0, 500) || "unknown error";
}

export function createOutboxWorker(options: OutboxWorkerOptions): OutboxWorker {
  const { outbox, transport, owner, now } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const leaseMs = options.leaseMs ?? 60_000;
  const batchSize = options.batchSize ?? 20;
  const maxAttempts = options.maxAttempts ?? 8;
  const backoffMs = options.backoffMs ?? defaultBackoff;
  const onError = options.onError ?? (() => {});

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  let wakeAgain = false;
  // Every pass (timer or runOnce) is chained on this, so passes never overlap.
  let chain: Promise<unknown> = Promise.resolve();

  /** Records a failed attempt; retries later unless `permanent` or out of attempts. */
  async function fail(message: ClaimedMessage, error: unknown, permanent: boolean): Promise<void> {
    onError(error, message);
    const attempt = message.attempts + 1;
    const next = permanent || attempt >= maxAttempts ? null : now() + backoffMs(attempt);
    await outbox.markFailed(message.id, owner, describe(error), next);
  }

  /** Delivers one claimed message; true when sent. */
  async function deliver(message: ClaimedMessage): Promise<boolean> {
    let payload: MessagePayload | undefined;
    try {
      payload = await options.openPayload(message);
    } catch (error) {
      await fail(message, error, false); // e.g. the key store is briefly unreachable
      return false;
    }
    if (!payload) {
      await fail(message, new Error("payload can no longer be opened"), true);
      return false;
    }
    let rendered: RenderedMessage;
    try {
      rendered = renderMessage(payload, { productName: options.productName });
    } catch (error) {
      await fail(message, error, true); // a bad kind or missing variable will not fix itself
      return false;
    }
    try {
      await transport.send({ to: payload.to, ...rendered });
    } catch (error) {
      await fail(message, error, false);
      return false;
    }
    await outbox.markSent(message.id, owner, now());
    return true;
  }

  async function pass(): Promise<number> {
    const claimedAt = now();
    const claimed = await outbox.claimDue({ now: claimedAt, limit: batchSize, owner, leaseMs });
    let sent = 0;
    for (const message of claimed) {
      // Past our lease another worker may hold the row: leave the rest to it.
      if (now() >= claimedAt + leaseMs) break;
      try {
        if (await deliver(message)) sent++;
      } catch (error) {
        onError(error, message); // markSent/markFailed failed; the lease expiry retries it
      }
    }
    return sent;
  }

  function runOnce(): Promise<number> {
    const result = chain.then(pass);
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
    let sent = 0;
    try {
      sent = await runOnce();
    } catch (error) {
      onError(error); // e.g. the database is down; try again next poll
    }
    ticking = false;
    // A full batch suggests more is due: go again at once.
    schedule(wakeAgain || sent >= batchSize ? 0 : pollIntervalMs);
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
