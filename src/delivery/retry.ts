// When to try a message again, and whether to: exponential backoff with jitter
// bounded by a maximum age, and the line between a refusal that will not change
// (a 5xx for the recipient or the message) and a failure that may pass (the
// server down, a timeout, a 4xx). Also the only description of a failure that
// may be logged or stored: SMTP errors carry the recipient's address in their
// message, response and rejected lists, so none of those ever leave here.

/** How a failed message is retried; from OUTBOX_* in src/config.ts. */
export interface RetryPolicy {
  /** The first retry's delay; each next one doubles it. */
  baseDelayMs: number;
  /** No delay between two attempts grows beyond this. */
  maxDelayMs: number;
  /** A message still undelivered this long after it was queued (or requeued) is given up on. */
  maxAgeMs: number;
}

/** Postfix-like defaults: 30 s doubling up to an hour between attempts, for two days. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseDelayMs: 30_000, maxDelayMs: 3_600_000, maxAgeMs: 2 * 24 * 3_600_000 };

/**
 * The delay after the `attempt`-th failed attempt (1 for the first):
 * base·2^(attempt−1) capped at maxDelay, then a random point between half of
 * it and all of it, so messages failed together (an outage) do not retry in step.
 */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 40); // 2^40 · base overflows any cap; stop there
  const delay = Math.min(policy.baseDelayMs * 2 ** exponent, policy.maxDelayMs);
  return Math.round(delay / 2 + (random() * delay) / 2);
}

/**
 * When to try again after a transient failure at `now`, or null to give up:
 * never later than the message's deadline (queuedAt + maxAge), so the last
 * attempt is made at the deadline itself; null once the deadline has passed.
 */
export function nextAttemptAt(input: { attempt: number; now: number; queuedAt: number; delayMs: number; maxAgeMs: number }): number | null {
  const deadline = input.queuedAt + input.maxAgeMs;
  if (input.now >= deadline) return null;
  return Math.min(input.now + input.delayMs, deadline);
}

export type FailureClass = "permanent" | "transient";

/** What may be logged, stored and shown of a failed attempt: codes only, never text from the server. */
export interface DeliveryFailure {
  class: FailureClass;
  /** nodemailer's error code (EENVELOPE, ECONNECTION, ETIMEDOUT, …), a system code, or one of ours (PAYLOAD_GONE, …). */
  code: string;
  /** The system error under nodemailer's code (ECONNREFUSED under ECONNECTION). */
  originalCode?: string;
  /** The SMTP reply code, when the server answered. */
  responseCode?: number;
  /** The SMTP command answered (RCPT TO, DATA, …). */
  command?: string;
  /** An SMS provider's own error code (Twilio's 21211), digits only: the HTTP status is responseCode. */
  providerCode?: string;
  /** For our own reasons only: a fixed sentence ("payload can no longer be opened"), never text from elsewhere. */
  reason?: string;
}

// Codes are short upper-case words; anything else (text that might hold an address) is not a code.
const CODE = /^[A-Z][A-Z0-9_]{1,31}$/;
const COMMAND = /^[A-Z][A-Z ]{1,15}$/;

function code(value: unknown): string | undefined {
  return typeof value === "string" && CODE.test(value) ? value : undefined;
}

/**
 * Classifies an error thrown by the mail transport. Permanent: the server
 * refused the recipient (RCPT TO) or the message (DATA) with a 5xx, or
 * nodemailer refused the envelope before sending (an address it cannot
 * use). Everything else is transient — connection refused or reset, timeouts,
 * DNS, TLS, 4xx replies, and also 5xx to AUTH or MAIL FROM: those say our
 * own setup is wrong (credentials, sender), which an operator fixes, and must
 * not fail every queued message at once.
 */
export function classifySendError(error: unknown): DeliveryFailure {
  const e = (typeof error === "object" && error !== null ? error : {}) as Record<string, unknown>;
  const failure: DeliveryFailure = { class: "transient", code: code(e.code) ?? "UNKNOWN" };
  const originalCode = code(e.originalCode);
  if (originalCode) failure.originalCode = originalCode;
  if (typeof e.responseCode === "number" && Number.isInteger(e.responseCode) && e.responseCode >= 200 && e.responseCode < 600)
    failure.responseCode = e.responseCode;
  if (typeof e.command === "string" && COMMAND.test(e.command)) failure.command = e.command;
  const refused = failure.responseCode !== undefined && failure.responseCode >= 500;
  const aboutRecipientOrMessage =
    (failure.code === "EENVELOPE" && failure.command === "RCPT TO") || (failure.code === "EMESSAGE" && failure.command === "DATA");
  // nodemailer's own checks before anything is sent (command "API"): an unusable address stays unusable.
  const unusableEnvelope = failure.code === "EENVELOPE" && failure.command === "API";
  if ((refused && aboutRecipientOrMessage) || unusableEnvelope) failure.class = "permanent";
  return failure;
}

/** One of our own reasons (no transport error): a fixed code, class and sentence. */
export function ownFailure(failureClass: FailureClass, failureCode: string, reason: string): DeliveryFailure {
  return { class: failureClass, code: failureCode, reason };
}

/** The outbox's last_error: our own sentence, or the codes ("EENVELOPE 550 RCPT TO"); the class is stored beside it. */
export function describeFailure(failure: DeliveryFailure): string {
  return (
    failure.reason ??
    [failure.code, failure.originalCode, failure.responseCode, failure.providerCode, failure.command].filter((part) => part !== undefined).join(" ")
  );
}
