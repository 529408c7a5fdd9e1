// Delivers domain events to webhooks. Each pass: (1) the instance holding the
// "events.dispatch" lease numbers new events and queues one delivery per
// subscribed webhook (EventStore.sequence); (2) due deliveries are leased per
// row and POSTed, signed per Standard Webhooks. A failure (network, timeout,
// any status but 2xx) is retried with the outbox's backoff (./retry.ts) until
// the delivery is a day old; deliveries about one account go in order (the
// store leases the next only once the previous one is settled). Runs in the
// background: no RPC ever waits for an endpoint.
import type { ClaimedDelivery, EventStore, WebhookStore } from "../domain/ports/events.ts";
import type { Leases } from "../domain/ports/leases.ts";
import { eventBody } from "../domain/events.ts";
import { signedHeaders } from "../crypto/webhook-signature.ts";
import type { GuardedPost } from "./guarded-http.ts";
import { createPollingLoop, type PollingLoop } from "./polling-loop.ts";
import { nextAttemptAt, retryDelayMs, type RetryPolicy } from "./retry.ts";

/** Standard Webhooks' own schedule reaches about a day; so do we: 30 s doubling to an hour, for 24 hours. */
export const WEBHOOK_RETRY_POLICY: RetryPolicy = { baseDelayMs: 30_000, maxDelayMs: 3_600_000, maxAgeMs: 24 * 3_600_000 };

export interface WebhookWorkerOptions {
  events: EventStore;
  webhooks: WebhookStore;
  leases: Leases;
  /** The POST, guarded against private addresses (./guarded-http.ts). */
  post: GuardedPost;
  /** The webhook's signing secret from its sealed form. */
  openSecret(webhookId: string, sealed: string): string;
  now: () => number;
  owner: string;
  newId: () => string;
  pollIntervalMs?: number; // default 1000
  leaseMs?: number; // default 60_000
  batchSize?: number; // default 50
  /** How long one POST may take (default 10 s). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Overrides the policy's delay after the attempt-th failure (tests). */
  backoffMs?: (attempt: number) => number;
  random?: () => number;
  /** A failed attempt (codes only) or a broken pass. */
  onError?: (error: unknown, delivery?: ClaimedDelivery) => void;
}

/** A failed POST as it may be logged and stored: a status code or an error code, never the body. */
export class WebhookDeliveryError extends Error {
  readonly code: string;
  readonly nextAttemptAt: number | null;
  constructor(code: string, nextAttemptAt: number | null) {
    super(`webhook delivery failed: ${code}`);
    this.name = "WebhookDeliveryError";
    this.code = code;
    this.nextAttemptAt = nextAttemptAt;
  }
}

const CODE = /^[A-Z][A-Z0-9_]{1,31}$/;

function failureCode(error: unknown): string {
  const e = error as { name?: string; code?: unknown; cause?: { code?: unknown } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "TIMEOUT";
  const code = e?.cause?.code ?? e?.code;
  return typeof code === "string" && CODE.test(code) ? code : "NETWORK_ERROR";
}

export type WebhookWorker = PollingLoop;

export function createWebhookWorker(options: WebhookWorkerOptions): WebhookWorker {
  const { events, webhooks, leases, now, owner, post } = options;
  const leaseMs = options.leaseMs ?? 60_000;
  const batchSize = options.batchSize ?? 50;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retry = options.retry ?? WEBHOOK_RETRY_POLICY;
  const random = options.random ?? Math.random;
  const backoffMs = options.backoffMs ?? ((attempt: number) => retryDelayMs(attempt, retry, random));
  const onError = options.onError ?? (() => {});

  /** Numbers new events and queues their deliveries, when no other instance does it now. */
  async function dispatch(): Promise<number> {
    const lease = await leases.acquire("events.dispatch", leaseMs);
    if (!lease) return 0;
    try {
      let total = 0;
      for (;;) {
        const numbered = await events.sequence({ limit: batchSize, now: now(), newId: options.newId });
        total += numbered;
        if (numbered < batchSize) return total;
      }
    } finally {
      await lease.release().catch(() => {});
    }
  }

  async function deliver(delivery: ClaimedDelivery): Promise<boolean> {
    const body = eventBody(delivery.event);
    let code: string | undefined;
    try {
      const secret = options.openSecret(delivery.webhook.id, delivery.webhook.secretSealed);
      const response = await post({
        url: delivery.webhook.url,
        headers: { "user-agent": "identity-webhooks/1", ...signedHeaders(secret, delivery.eventId, now(), body) },
        body,
        timeoutMs,
        bodyMax: 0,
      });
      if (response.status < 200 || response.status >= 300) code = `HTTP_${response.status}`;
    } catch (error) {
      code = failureCode(error);
    }
    if (code === undefined) {
      await webhooks.markDelivered(delivery.id, owner, now());
      return true;
    }
    const attempt = delivery.attempts + 1;
    const at = now();
    const next = nextAttemptAt({ attempt, now: at, queuedAt: delivery.queuedAt, delayMs: backoffMs(attempt), maxAgeMs: retry.maxAgeMs });
    onError(new WebhookDeliveryError(code, next), delivery);
    await webhooks.markFailed(delivery.id, owner, code, next, at);
    return false;
  }

  async function pass(): Promise<number> {
    let done = await dispatch();
    const claimedAt = now();
    const claimed = await webhooks.claimDue({ now: claimedAt, limit: batchSize, owner, leaseMs });
    // Different endpoints at once; one endpoint's deliveries in order.
    const byWebhook = new Map<string, ClaimedDelivery[]>();
    for (const d of claimed) byWebhook.set(d.webhookId, [...(byWebhook.get(d.webhookId) ?? []), d]);
    await Promise.all(
      [...byWebhook.values()].map(async (list) => {
        for (const delivery of list) {
          if (now() >= claimedAt + leaseMs) return; // past our lease another worker may hold the row
          try {
            if (await deliver(delivery)) done++;
          } catch (error) {
            onError(error, delivery); // the outcome could not be recorded; the lease expiry retries it
          }
        }
      }),
    );
    return done;
  }

  // Anything done suggests more may be due (the next delivery of an account waits for the previous one).
  return createPollingLoop({ pass, pollIntervalMs: options.pollIntervalMs ?? 1000, again: (done) => done > 0, onError: (error) => onError(error) });
}
