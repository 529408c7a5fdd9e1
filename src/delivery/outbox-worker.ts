// Delivers queued messages: lease due rows, open, render, send — email kinds
// through the mail transport, SMS kinds through the SMS sender — then record
// the outcome. Delivery is at least once: a send whose markSent is lost (crash,
// database error) is sent again when its lease expires. A transient failure
// (SMTP or the SMS provider down, timeout, 4xx SMTP, 429/5xx HTTP) is retried
// with backoff until the message's maximum age; a permanent one (a 5xx SMTP
// reply for the recipient, a provider refusing the number) fails it at once.
// A phone code is not sent once it has expired: it could only cost money.
import type { ClaimedMessage, OutboxStore } from "../domain/ports/outbox.ts";
import {
  classifySendError,
  DEFAULT_RETRY_POLICY,
  describeFailure,
  nextAttemptAt,
  ownFailure,
  retryDelayMs,
  type DeliveryFailure,
  type RetryPolicy,
} from "./retry.ts";
import { classifySmsError, unconfiguredSmsSender } from "./sms-sender.ts";
import { createPollingLoop, type PollingLoop } from "./polling-loop.ts";
import { renderMessage, renderSms, type TenantTemplate } from "./templates.ts";
import { type MessageChannel, MessageKind, type MessagePayload, messageChannel } from "../domain/messages.ts";
import type { MailTransport, SmsSender } from "./types.ts";

export interface OutboxWorkerOptions {
  outbox: OutboxStore;
  /**
   * Decrypts a claimed message; undefined when it can no longer be opened (account erased) → the message is dropped
   * as failed without retry; null when there is nothing to send (a decoy request) → settled as sent, nothing sent.
   */
  openPayload(message: ClaimedMessage): Promise<MessagePayload | null | undefined>;
  transport: MailTransport;
  /** Where SMS kinds go (default: none configured, they stay queued). */
  sms?: SmsSender;
  productName: string;
  /** The tenant's own template for the message, if any (src/domain/message-templates.ts); none: the built-in one. */
  tenantTemplate?: (message: ClaimedMessage, payload: MessagePayload) => Promise<TenantTemplate | undefined>;
  now: () => number;
  owner: string; // unique per process, e.g. `${hostname}:${pid}:${random}`
  pollIntervalMs?: number; // default 1000
  leaseMs?: number; // default 60_000
  batchSize?: number; // default 20
  /** Backoff and maximum age of transient failures (default DEFAULT_RETRY_POLICY: 30 s doubling to 1 h, for 2 days). */
  retry?: RetryPolicy;
  /** Jitter source for the backoff (default Math.random). */
  random?: () => number;
  /** Overrides the policy's delay after the attempt-th failure (the maximum age still applies). */
  backoffMs?: (attempt: number) => number;
  /** Also give up after this many attempts (default: no limit but the maximum age). */
  maxAttempts?: number;
  /**
   * Errors: a DeliveryError for a failed attempt (codes only, nothing the server
   * said: its text names the recipient), or whatever broke a pass (the database).
   */
  onError?: (error: unknown, message?: ClaimedMessage) => void;
  /** Every attempt's outcome (metrics). */
  onAttempt?: (outcome: DeliveryOutcome) => void;
}

export type DeliveryOutcome =
  | { kind: string; channel: MessageChannel; result: "sent" }
  | { kind: string; channel: MessageChannel; result: "retry" | "failed"; failure: DeliveryFailure };

/** The channel of a stored kind (a string in the row). */
function channelOf(kind: string): MessageChannel {
  return messageChannel(kind as MessageKind);
}

/** When a phone code's SMS is no use any more: its lifetime (`minutes`) after it was queued; undefined for other kinds. */
function smsExpiresAt(payload: MessagePayload, message: ClaimedMessage): number | undefined {
  if (payload.kind !== MessageKind.PHONE_CODE) return undefined;
  const minutes = Number(payload.variables?.minutes);
  return minutes > 0 ? message.createdAt + minutes * 60_000 : undefined;
}

/** A failed attempt as it may be logged: the scrubbed failure, the attempt, and what happens next. */
export class DeliveryError extends Error {
  readonly failure: DeliveryFailure;
  readonly attempt: number;
  /** When the next attempt is due; null: given up (status failed). */
  readonly nextAttemptAt: number | null;

  constructor(failure: DeliveryFailure, attempt: number, nextAttemptAt: number | null) {
    super(`${failure.class} delivery failure: ${describeFailure(failure)}`);
    this.name = "DeliveryError";
    this.failure = failure;
    this.attempt = attempt;
    this.nextAttemptAt = nextAttemptAt;
  }
}

/** runOnce resolves with how many were sent; nudge is called after a message is enqueued. */
export type OutboxWorker = PollingLoop;

export function createOutboxWorker(options: OutboxWorkerOptions): OutboxWorker {
  const { outbox, transport, owner, now } = options;
  const sms = options.sms ?? unconfiguredSmsSender;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const leaseMs = options.leaseMs ?? 60_000;
  const batchSize = options.batchSize ?? 20;
  const retry = options.retry ?? DEFAULT_RETRY_POLICY;
  const maxAttempts = options.maxAttempts ?? Infinity;
  const random = options.random ?? Math.random;
  const backoffMs = options.backoffMs ?? ((attempt: number) => retryDelayMs(attempt, retry, random));
  const onError = options.onError ?? (() => {});
  const onAttempt = options.onAttempt ?? (() => {});

  /**
   * Records a failed attempt: retried later when transient and the message is
   * young enough, else failed. Only the scrubbed failure goes anywhere.
   */
  async function fail(message: ClaimedMessage, failure: DeliveryFailure, options: { dropPayload?: boolean } = {}): Promise<void> {
    const attempt = message.attempts + 1;
    const at = now();
    const next =
      failure.class === "permanent" || attempt >= maxAttempts
        ? null
        : nextAttemptAt({ attempt, now: at, queuedAt: message.queuedAt, delayMs: backoffMs(attempt), maxAgeMs: retry.maxAgeMs });
    onError(new DeliveryError(failure, attempt, next), message);
    onAttempt({ kind: message.kind, channel: channelOf(message.kind), result: next === null ? "failed" : "retry", failure });
    await outbox.markFailed(message.id, owner, describeFailure(failure), next, { errorClass: failure.class, at, keepPayload: options.dropPayload !== true });
  }

  /** Delivers one claimed message; true when sent. */
  async function deliver(message: ClaimedMessage): Promise<boolean> {
    let payload: MessagePayload | null | undefined;
    try {
      payload = await options.openPayload(message);
    } catch (error) {
      // e.g. the key store is briefly unreachable: only the error's code is kept.
      await fail(message, { ...classifySendError(error), class: "transient" });
      return false;
    }
    if (payload === null) {
      await outbox.markSent(message.id, owner, now()); // drops the payload; counted nowhere: nothing went out
      return false;
    }
    if (!payload) {
      await fail(message, ownFailure("permanent", "PAYLOAD_GONE", "payload can no longer be opened"), { dropPayload: true });
      return false;
    }
    const channel = messageChannel(payload.kind);
    const expiresAt = smsExpiresAt(payload, message);
    if (expiresAt !== undefined && now() >= expiresAt) {
      await fail(message, ownFailure("permanent", "CODE_EXPIRED", "the code expired before it could be sent"), { dropPayload: true });
      return false;
    }
    let template: TenantTemplate | undefined;
    try {
      template = await options.tenantTemplate?.(message, payload);
    } catch (error) {
      // The database is briefly unreachable: try again later rather than send the built-in one.
      await fail(message, { ...classifySendError(error), class: "transient" });
      return false;
    }
    let send: () => Promise<void>;
    try {
      if (channel === "sms") {
        const { text, locale } = renderSms(payload, { productName: options.productName }, template);
        send = () => sms.send({ to: payload.to, body: text, locale, messageId: message.id });
      } else {
        const rendered = renderMessage(payload, { productName: options.productName }, template);
        send = () => transport.send({ to: payload.to, ...rendered });
      }
    } catch {
      // A bad kind or missing variable will not fix itself (nor will a requeue).
      await fail(message, ownFailure("permanent", "RENDER_FAILED", "message cannot be rendered"), { dropPayload: true });
      return false;
    }
    try {
      await send();
    } catch (error) {
      await fail(message, channel === "sms" ? classifySmsError(error) : classifySendError(error));
      return false;
    }
    await outbox.markSent(message.id, owner, now());
    onAttempt({ kind: message.kind, channel, result: "sent" });
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

  // A full batch suggests more is due: go again at once.
  return createPollingLoop({ pass, pollIntervalMs, again: (sent) => sent >= batchSize, onError: (error) => onError(error) });
}
