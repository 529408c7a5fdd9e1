// The SMS providers (src/delivery/sms-sender.ts) against a local HTTP server
// playing each one: what is sent, how it is signed or authenticated, and how
// every kind of answer is classified (permanent: never retried; transient:
// retried by the outbox). Nothing the provider says about the number is kept.
import { afterEach, describe, expect, it } from "vitest";
import { classifySmsError, createTwilioSmsSender, createWebhookSmsSender, SmsDeliveryError, webhookSignature } from "../../src/delivery/sms-sender.ts";
import type { OutgoingSms, SmsSender } from "../../src/delivery/types.ts";
import { freePort } from "../support/smtp.ts";
import { type SmsProvider, startSmsProvider } from "../support/sms-provider.ts";

const SECRET = "s3cret-of-at-least-32-characters-for-hmac";
const ACCOUNT_SID = `AC${"0123456789abcdef".repeat(2)}`;
const AUTH_TOKEN = "twilio-auth-token";
const SMS: OutgoingSms = { to: "+33612345678", body: "482913 is your Acme ID code.", locale: "en", messageId: "0192f3c4-0000-7000-8000-000000000001" };

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function provider(kind: "webhook" | "twilio", extra: { dedupe?: boolean } = {}): Promise<SmsProvider> {
  const p = await startSmsProvider({ kind, secret: SECRET, accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, ...extra });
  cleanup.push(() => p.close());
  return p;
}

/** The failure a send ends with (it must end with one). */
async function failureOf(sender: SmsSender, sms: OutgoingSms = SMS) {
  let thrown: unknown;
  try {
    await sender.send(sms);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, "the send should have failed").toBeInstanceOf(SmsDeliveryError);
  // Whatever the provider said, nothing of it names the number.
  const error = thrown as SmsDeliveryError;
  expect(`${error.message} ${error.stack} ${JSON.stringify(error)} ${JSON.stringify(classifySmsError(error))}`).not.toContain("612345678");
  return classifySmsError(error);
}

describe("webhook SMS provider", () => {
  const webhook = (p: SmsProvider, secret = SECRET, timeoutMs?: number) =>
    createWebhookSmsSender({ url: `${p.url}/hooks/sms`, secret, ...(timeoutMs ? { timeoutMs } : {}) });

  it("POSTs the JSON body, signed: the receiver verifies X-Signature over the raw body", async () => {
    const p = await provider("webhook");
    await webhook(p).send(SMS);
    expect(p.delivered).toEqual([{ to: "+33612345678", body: SMS.body, locale: "en", messageId: SMS.messageId }]);
    const [request] = p.requests;
    expect(request!.method).toBe("POST");
    expect(request!.path).toBe("/hooks/sms");
    expect(request!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request!.raw)).toStrictEqual({ to: SMS.to, body: SMS.body, locale: "en", message_id: SMS.messageId });
    expect(request!.headers["x-signature"]).toBe(webhookSignature(SECRET, request!.raw));
    expect(request!.headers["x-signature"]).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it("a signature made with another secret is refused by the receiver (401: our setup, retried)", async () => {
    const p = await provider("webhook");
    const failure = await failureOf(webhook(p, "another-secret-of-at-least-32-characters"));
    expect(failure).toStrictEqual({ class: "transient", code: "SMS_WEBHOOK", responseCode: 401 });
    expect(p.delivered).toEqual([]);
  });

  it("classifies the receiver's answers: 4xx refuses the message for good, 429 and 5xx are retried", async () => {
    const p = await provider("webhook");
    const sender = webhook(p);
    for (const [status, expected] of [
      [400, "permanent"],
      [422, "permanent"],
      [410, "permanent"],
      [429, "transient"],
      [500, "transient"],
      [502, "transient"],
      [503, "transient"],
      [403, "transient"],
      [404, "transient"],
    ] as const) {
      p.answerNext({ status, body: { error: `no such number ${SMS.to}` } });
      expect(await failureOf(sender), String(status)).toStrictEqual({ class: expected, code: "SMS_WEBHOOK", responseCode: status });
    }
    expect(p.delivered).toEqual([]);
    await sender.send(SMS);
    expect(p.delivered).toHaveLength(1);
  });

  it("the provider down, or too slow, is transient", async () => {
    const down = createWebhookSmsSender({ url: `http://127.0.0.1:${await freePort()}/sms`, secret: SECRET });
    expect(await failureOf(down)).toStrictEqual({ class: "transient", code: "SMS_WEBHOOK", originalCode: "ECONNREFUSED" });

    const p = await provider("webhook");
    p.answerNext("hang");
    const started = Date.now();
    expect(await failureOf(webhook(p, SECRET, 300))).toStrictEqual({ class: "transient", code: "SMS_WEBHOOK", originalCode: "TIMEOUT" });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("does not follow a redirect (it would carry the code elsewhere)", async () => {
    const p = await provider("webhook");
    const elsewhere = await provider("webhook");
    p.answerNext({ status: 307, body: "", headers: { location: `${elsewhere.url}/stolen` } });
    // A moved endpoint is our setup to fix: retried, never followed.
    expect((await failureOf(webhook(p))).class).toBe("transient");
    expect(elsewhere.requests).toEqual([]);
  });

  it("refuses a recipient that is not E.164 without a request", async () => {
    const p = await provider("webhook");
    expect(await failureOf(webhook(p), { ...SMS, to: "0612345678" })).toStrictEqual({ class: "permanent", code: "SMS_RECIPIENT_INVALID" });
    expect(p.requests).toEqual([]);
  });
});

describe("Twilio SMS provider", () => {
  const twilio = (p: SmsProvider, extra: { from?: string; messagingServiceSid?: string; authToken?: string } = {}) =>
    createTwilioSmsSender({
      accountSid: ACCOUNT_SID,
      authToken: extra.authToken ?? AUTH_TOKEN,
      apiUrl: `${p.url}/`,
      ...(extra.messagingServiceSid ? { messagingServiceSid: extra.messagingServiceSid } : { from: extra.from ?? "+15005550006" }),
    });

  it("POSTs To, From and Body form-encoded to the account's Messages.json with Basic auth", async () => {
    const p = await provider("twilio");
    await twilio(p).send(SMS);
    expect(p.delivered).toEqual([{ to: SMS.to, body: SMS.body, from: "+15005550006" }]);
    const [request] = p.requests;
    expect(request!.path).toBe(`/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
    expect(request!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(request!.headers.authorization).toBe(`Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString("base64")}`);
    expect(Object.fromEntries(new URLSearchParams(request!.raw))).toStrictEqual({ To: SMS.to, Body: SMS.body, From: "+15005550006" });
  });

  it("sends through a Messaging Service instead of a From number", async () => {
    const p = await provider("twilio");
    const messagingServiceSid = `MG${"a".repeat(32)}`;
    await twilio(p, { messagingServiceSid }).send(SMS);
    expect(p.delivered).toEqual([{ to: SMS.to, body: SMS.body, messagingServiceSid }]);
  });

  it("21211 (invalid To) and other refusals of the recipient are permanent; Twilio's text naming the number is not kept", async () => {
    const p = await provider("twilio");
    const sender = twilio(p);
    for (const code of [21211, 21614, 21610, 21408]) {
      p.answerNext({
        status: 400,
        body: { code, message: `The 'To' number ${SMS.to} is not a valid phone number.`, more_info: `https://www.twilio.com/docs/errors/${code}`, status: 400 },
      });
      expect(await failureOf(sender)).toStrictEqual({ class: "permanent", code: "TWILIO", responseCode: 400, providerCode: String(code) });
    }
  });

  it("500, 503 and 429 are retried; so are refusals of our own setup (bad credentials, sender not SMS-capable)", async () => {
    const p = await provider("twilio");
    const sender = twilio(p);
    p.answerNext({ status: 500, body: { code: 20500, message: "Internal Server Error", status: 500 } });
    expect(await failureOf(sender)).toStrictEqual({ class: "transient", code: "TWILIO", responseCode: 500, providerCode: "20500" });
    p.answerNext({ status: 503, body: "<html>Service Unavailable</html>" });
    expect(await failureOf(sender)).toStrictEqual({ class: "transient", code: "TWILIO", responseCode: 503 });
    p.answerNext({ status: 429, body: { code: 20429, message: "Too Many Requests", status: 429 } });
    expect(await failureOf(sender)).toStrictEqual({ class: "transient", code: "TWILIO", responseCode: 429, providerCode: "20429" });
    p.answerNext({ status: 400, body: { code: 21606, message: "The From phone number is not a valid, SMS-capable inbound phone number", status: 400 } });
    expect(await failureOf(sender)).toStrictEqual({ class: "transient", code: "TWILIO", responseCode: 400, providerCode: "21606" });
    // Wrong auth token: the test server answers as Twilio does.
    expect(await failureOf(twilio(p, { authToken: "wrong" }))).toStrictEqual({ class: "transient", code: "TWILIO", responseCode: 401, providerCode: "20003" });
    expect(p.delivered).toEqual([]);
    await sender.send(SMS);
    expect(p.delivered).toHaveLength(1);
  });

  it("Twilio unreachable is transient", async () => {
    const sender = createTwilioSmsSender({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, from: "Acme", apiUrl: `http://127.0.0.1:${await freePort()}` });
    expect(await failureOf(sender)).toStrictEqual({ class: "transient", code: "TWILIO", originalCode: "ECONNREFUSED" });
  });
});
