// SMS providers behind one port, SmsSender: a generic signed webhook, Twilio's
// Messages API, and a log line for development. Every provider answer becomes
// success or a DeliveryFailure — permanent (the provider refused this number or
// this message: retrying cannot help) or transient (the provider is down, slow,
// rate limiting us, or refuses our own credentials/sender, which an operator
// fixes) — so the outbox's backoff and give-up apply as for mail. Nothing the
// provider says is kept but its status and numeric error code: its text names
// the recipient's number.
import { createHmac } from "node:crypto";
import type { DeliveryFailure } from "./retry.ts";
import type { OutgoingSms, SmsSender } from "./types.ts";

/** Each request is bounded well inside the outbox lease (60 s): a send still hanging then could be repeated by another worker. */
export const SMS_REQUEST_TIMEOUT_MS = 10_000;
/** A provider's answer is read up to this many bytes (an error object is small). */
const MAX_ANSWER_BYTES = 64 * 1024;
const E164 = /^\+[1-9][0-9]{6,14}$/;

/** A failed send, by codes only (see DeliveryFailure): what the outbox worker classifies, stores and logs. */
export class SmsDeliveryError extends Error {
  readonly failure: DeliveryFailure;

  constructor(failure: DeliveryFailure) {
    super(`SMS not sent: ${[failure.code, failure.originalCode, failure.responseCode, failure.providerCode].filter((p) => p !== undefined).join(" ")}`);
    this.name = "SmsDeliveryError";
    this.failure = failure;
  }
}

/** The failure of any error a sender threw: its own classification, else transient (never text from elsewhere). */
export function classifySmsError(error: unknown): DeliveryFailure {
  if (error instanceof SmsDeliveryError) return error.failure;
  return { class: "transient", code: "SMS_UNKNOWN" };
}

/**
 * HTTP statuses that say our own setup is wrong or the provider is busy, not
 * that this message or number is refused: 401/403 (credentials), 404 (a wrong
 * URL or account), 407, 408, 409, 425, 429, and every 5xx. Retried, so a
 * configuration mistake does not fail every queued message at once.
 */
const TRANSIENT_STATUSES = new Set([401, 403, 404, 407, 408, 409, 425, 429]);

function statusClass(status: number): DeliveryFailure["class"] {
  return status >= 500 || TRANSIENT_STATUSES.has(status) ? "transient" : "permanent";
}

/**
 * Twilio error codes answered with a 400 that are about our account or sender,
 * not the recipient (https://www.twilio.com/docs/api/errors): the From number or
 * Messaging Service is missing, invalid or not SMS-capable, the queue is full.
 * Any other 400 (21211 invalid To, 21614 not a mobile number, 21610 the recipient
 * replied STOP, 21408 region not enabled, …) refuses this message for good.
 */
const TWILIO_SETUP_CODES = new Set(["20003", "20005", "20404", "21212", "21601", "21602", "21603", "21606", "21611", "21659", "21701", "21703", "21704"]);

/** The system code under a fetch failure (ECONNREFUSED, ECONNRESET, ENOTFOUND…), or our TIMEOUT. */
function networkFailure(provider: string, error: unknown): SmsDeliveryError {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "TimeoutError" || name === "AbortError") return new SmsDeliveryError({ class: "transient", code: provider, originalCode: "TIMEOUT" });
  let cause: unknown = error;
  for (let depth = 0; depth < 4 && cause; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string" && /^[A-Z][A-Z0-9_]{1,31}$/.test(code))
      return new SmsDeliveryError({ class: "transient", code: provider, originalCode: code });
    cause = (cause as { cause?: unknown }).cause;
  }
  return new SmsDeliveryError({ class: "transient", code: provider, originalCode: "NETWORK" });
}

/** Reads at most MAX_ANSWER_BYTES of the answer; "" when it cannot be read. */
async function readAnswer(response: Response): Promise<string> {
  if (!response.body) return "";
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += chunk.byteLength;
      if (size > MAX_ANSWER_BYTES) break;
      chunks.push(Buffer.from(chunk));
    }
  } catch {
    return "";
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function post(provider: string, url: string, init: { headers: Record<string, string>; body: string; timeoutMs: number }): Promise<Response> {
  try {
    return await fetch(url, {
      method: "POST",
      headers: init.headers,
      body: init.body,
      // A redirect would carry the body (the code) somewhere not configured.
      redirect: "error",
      signal: AbortSignal.timeout(init.timeoutMs),
    });
  } catch (error) {
    throw networkFailure(provider, error);
  }
}

function checkRecipient(sms: OutgoingSms): void {
  // Phone numbers are normalized to E.164 before they are queued; anything else is refused before it costs a request.
  if (!E164.test(sms.to)) throw new SmsDeliveryError({ class: "permanent", code: "SMS_RECIPIENT_INVALID" });
}

export interface WebhookSmsOptions {
  url: string;
  /** HMAC-SHA256 key of the X-Signature header. */
  secret: string;
  timeoutMs?: number;
}

/** The X-Signature header value for a raw body: "sha256=" and the hex HMAC-SHA256 of the body under the secret. */
export function webhookSignature(secret: string, rawBody: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody).digest("hex")}`;
}

/**
 * POSTs {"to","body","locale","message_id"} as JSON to the operator's endpoint,
 * signed with X-Signature. 2xx: delivered. The receiver answers 4xx (other than
 * 401/403/404/408/409/429) to refuse a message for good, 5xx or 429 to have it
 * retried. message_id is the same on every retry, so a receiver can drop repeats.
 */
export function createWebhookSmsSender(options: WebhookSmsOptions): SmsSender {
  const timeoutMs = options.timeoutMs ?? SMS_REQUEST_TIMEOUT_MS;
  return {
    async send(sms) {
      checkRecipient(sms);
      const body = JSON.stringify({ to: sms.to, body: sms.body, locale: sms.locale, message_id: sms.messageId });
      const response = await post("SMS_WEBHOOK", options.url, {
        headers: { "content-type": "application/json", "x-signature": webhookSignature(options.secret, body), "user-agent": "identity-service" },
        body,
        timeoutMs,
      });
      await readAnswer(response); // drains the connection; nothing of it is kept
      if (response.ok) return;
      throw new SmsDeliveryError({ class: statusClass(response.status), code: "SMS_WEBHOOK", responseCode: response.status });
    },
    async close() {},
  };
}

export interface TwilioSmsOptions {
  accountSid: string;
  authToken: string;
  /** The sender: an E.164 number or alphanumeric sender id; or messagingServiceSid instead. */
  from?: string;
  messagingServiceSid?: string;
  /** https://api.twilio.com; tests point it at a local server. */
  apiUrl: string;
  timeoutMs?: number;
}

/**
 * Twilio's Messages API: POST {apiUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json,
 * form-encoded To, From (or MessagingServiceSid) and Body, HTTP Basic auth with
 * the account SID and auth token. 2xx (201 queued): accepted. An error answer
 * is classified by its status and Twilio's numeric code (see TWILIO_SETUP_CODES).
 */
export function createTwilioSmsSender(options: TwilioSmsOptions): SmsSender {
  const timeoutMs = options.timeoutMs ?? SMS_REQUEST_TIMEOUT_MS;
  const url = `${options.apiUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString("base64")}`;
  return {
    async send(sms) {
      checkRecipient(sms);
      const form = new URLSearchParams({ To: sms.to, Body: sms.body });
      if (options.messagingServiceSid) form.set("MessagingServiceSid", options.messagingServiceSid);
      else if (options.from) form.set("From", options.from);
      const response = await post("TWILIO", url, {
        headers: { "content-type": "application/x-www-form-urlencoded", authorization, accept: "application/json", "user-agent": "identity-service" },
        body: form.toString(),
        timeoutMs,
      });
      const answer = await readAnswer(response);
      if (response.ok) return;
      let providerCode: string | undefined;
      try {
        const code = (JSON.parse(answer) as { code?: unknown }).code;
        if (typeof code === "number" && Number.isInteger(code) && code > 0 && code < 1e6) providerCode = String(code);
      } catch {
        // Not Twilio's JSON (a proxy's page): the status alone decides.
      }
      const failureClass = providerCode !== undefined && TWILIO_SETUP_CODES.has(providerCode) ? "transient" : statusClass(response.status);
      throw new SmsDeliveryError({
        class: failureClass,
        code: "TWILIO",
        responseCode: response.status,
        ...(providerCode !== undefined ? { providerCode } : {}),
      });
    },
    async close() {},
  };
}

/**
 * DEVELOPMENT ONLY: "sends" by logging the text (with its code) so a developer
 * can sign in by phone without a provider. Never outside development mode.
 */
export function createLogSmsSender(log: (line: string, fields: Record<string, unknown>) => void): SmsSender {
  return {
    async send(sms) {
      log("sms (development sender, not sent)", { to: sms.to, text: sms.body, messageId: sms.messageId });
    },
    async close() {},
  };
}

/**
 * SMS_PROVIDER=none: phone codes are turned off. An SMS kind queued anyway is
 * given up at once (permanent), never logged.
 */
export const disabledSmsSender: SmsSender = {
  async send() {
    throw new SmsDeliveryError({ class: "permanent", code: "SMS_DISABLED" });
  },
  async close() {},
};

/**
 * No provider outside development mode (operator commands, which never deliver;
 * the service refuses to start so, see assertServable): an SMS stays queued, never logged.
 */
export const unconfiguredSmsSender: SmsSender = {
  async send() {
    throw new SmsDeliveryError({ class: "transient", code: "SMS_NOT_CONFIGURED" });
  },
  async close() {},
};
