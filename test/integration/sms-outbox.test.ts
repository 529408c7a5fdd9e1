// SMS through the durable outbox: the worker sends SMS kinds to the SMS sender
// and mail kinds to SMTP, with the same retries, give-up, listing and requeue;
// a provider down for a while then back gets every code once; an expired code
// is not sent. Then the whole service on both backends (embedded and MariaDB):
// PHONE_CODE messages sealed under the account's key, queued in the outbox
// store, arrive at a local webhook or Twilio; the development mode logs them;
// production without a provider keeps them queued and never logs a code.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSmtpTransport } from "../../src/delivery/mail-transport.ts";
import { createOutboxWorker, type DeliveryOutcome, type OutboxWorkerOptions } from "../../src/delivery/outbox-worker.ts";
import { createTwilioSmsSender, createWebhookSmsSender, disabledSmsSender } from "../../src/delivery/sms-sender.ts";
import type { SmsSender } from "../../src/delivery/types.ts";
import { sealMessage } from "../../src/domain/accounts.ts";
import { MessageKind, type MessagePayload } from "../../src/domain/messages.ts";
import type { OutboxMessage } from "../../src/domain/ports/outbox.ts";
import type { DurableStores } from "../../src/domain/ports/stores.ts";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { keyringFor } from "../../src/server/wiring.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";
import { BACKENDS, type BackendName } from "../support/backends.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { type Received, startSmtp } from "../support/smtp.ts";
import { type SmsProvider, startSmsProvider } from "../support/sms-provider.ts";

const SECRET = "webhook-secret-0123456789abcdef-0123456789";
const ACCOUNT_SID = `AC${"f".repeat(32)}`;
const AUTH_TOKEN = "auth-token-for-tests";
const PASSWORD = "correct horse battery staple";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function provider(kind: "webhook" | "twilio", extra: { dedupe?: boolean; port?: number } = {}): Promise<SmsProvider> {
  const p = await startSmsProvider({ kind, secret: SECRET, accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, ...extra });
  cleanup.push(() => p.close());
  return p;
}

const code = (to: string, c: string, minutes = "5", locale: "en" | "fr" = "en"): MessagePayload => ({
  kind: MessageKind.PHONE_CODE,
  to,
  locale,
  variables: { code: c, minutes },
});

describe("the outbox worker with an SMS sender", () => {
  let t: number;
  let database: SqlDatabase;
  let stores: DurableStores;

  beforeEach(async () => {
    t = Date.UTC(2026, 0, 1);
    database = openSqlDatabase({ sqlitePath: ":memory:" });
    await migrateToLatest(database.db);
    stores = createSqlStores(database, openSqlDatabase({ sqlitePath: ":memory:" }));
    cleanup.push(() => database.close());
  });

  async function enqueue(id: string, p: MessagePayload): Promise<OutboxMessage> {
    const message: OutboxMessage = { id, tenantId: "tenant-1", accountId: `account-${id}`, kind: p.kind, payloadSealed: JSON.stringify(p), createdAt: t };
    await stores.outbox.enqueue([message]);
    return message;
  }

  const row = (id: string) => database.db.selectFrom("outbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

  function worker(sms: SmsSender | undefined, overrides: Partial<OutboxWorkerOptions> = {}) {
    const w = createOutboxWorker({
      outbox: stores.outbox,
      openPayload: async (m) => JSON.parse(m.payloadSealed) as MessagePayload,
      transport: { send: async () => {}, close: async () => {} },
      ...(sms ? { sms } : {}),
      productName: "Acme ID",
      now: () => t,
      owner: "worker-a",
      backoffMs: (attempt) => attempt * 10_000,
      ...overrides,
    });
    cleanup.push(() => w.stop());
    return w;
  }

  const webhook = (p: SmsProvider, timeoutMs?: number) => createWebhookSmsSender({ url: `${p.url}/sms`, secret: SECRET, ...(timeoutMs ? { timeoutMs } : {}) });

  it("sends SMS kinds to the SMS sender and mail kinds to SMTP, counting each on its channel", async () => {
    const p = await provider("webhook");
    const inbox: Received[] = [];
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    const transport = createSmtpTransport(`smtp://127.0.0.1:${smtp.port}`, "Acme <no-reply@acme.test>");
    cleanup.push(() => transport.close());
    const outcomes: DeliveryOutcome[] = [];
    const w = worker(webhook(p), { transport, onAttempt: (o) => outcomes.push(o) });
    await enqueue("m1", code("+33612345678", "482913", "5", "fr"));
    await enqueue("m2", { kind: "verify_email", to: "jane@example.com", locale: "en", variables: { link: "https://id.example.com/v?t=1" } });

    expect(await w.runOnce()).toBe(2);
    expect(p.delivered).toEqual([
      { to: "+33612345678", body: "482913 est votre code Acme ID. Il expire dans 5 minutes. Ne le communiquez à personne.", locale: "fr", messageId: "m1" },
    ]);
    expect(inbox.map((m) => m.envelopeTo)).toEqual([["jane@example.com"]]);
    expect(outcomes).toEqual([
      { kind: "phone_code", channel: "sms", result: "sent" },
      { kind: "verify_email", channel: "email", result: "sent" },
    ]);
    expect(await row("m1")).toMatchObject({ status: "sent", payload: null, attempts: 1 });
    expect(await w.runOnce()).toBe(0);
    expect(p.delivered).toHaveLength(1);
  });

  it("a provider down for a while, then failing, then back: every code is delivered exactly once", async () => {
    const p = await provider("webhook");
    await p.stop();
    const errors: unknown[] = [];
    const w = worker(webhook(p), { onError: (e) => errors.push(e) });
    const numbers = ["+33612345671", "+33612345672", "+33612345673", "+447400123456", "+14155552671"];
    for (const [i, to] of numbers.entries()) await enqueue(`m${i}`, code(to, `10000${i}`, "10"));

    // Down: connection refused, every message kept for a retry.
    expect(await w.runOnce()).toBe(0);
    for (const i of numbers.keys()) expect(await row(`m${i}`)).toMatchObject({ status: "pending", attempts: 1, last_error: "SMS_WEBHOOK ECONNREFUSED" });

    // Up but overloaded: 503 for the first three, accepted for the rest.
    await p.start();
    p.answerNext({ status: 503 }, { status: 503 }, { status: 429 });
    t += 10_000;
    expect(await w.runOnce()).toBe(2);
    expect(p.delivered).toHaveLength(2);

    // Back for good: the rest go out at their next attempt, and nothing goes twice.
    t += 20_000;
    expect(await w.runOnce()).toBe(3);
    for (let i = 0; i < 5; i++) {
      t += 3_600_000;
      expect(await w.runOnce()).toBe(0);
    }
    expect(p.delivered.map((s) => s.messageId).sort()).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    expect(p.delivered.map((s) => s.to).sort()).toEqual([...numbers].sort());
    expect(new Set(p.delivered.map((s) => s.body.slice(0, 6)))).toEqual(new Set(["100000", "100001", "100002", "100003", "100004"]));
    for (const i of numbers.keys()) expect(await row(`m${i}`)).toMatchObject({ status: "sent", payload: null });
    expect(errors).toHaveLength(5 + 3);
  });

  it("a send that timed out but reached the provider is retried with the same message_id, which the receiver drops", async () => {
    const p = await provider("webhook", { dedupe: true });
    const w = worker(webhook(p, 200));
    await enqueue("m1", code("+33612345678", "482913"));
    // The receiver takes the message but answers after our timeout.
    p.answerNext({ status: 200, delayMs: 600 });
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "pending", last_error: "SMS_WEBHOOK TIMEOUT", last_error_class: "transient" });
    await new Promise((r) => setTimeout(r, 700));
    t += 10_000;
    expect(await w.runOnce()).toBe(1);
    expect(p.requests.map((r) => (JSON.parse(r.raw) as { message_id: string }).message_id)).toEqual(["m1", "m1"]);
    expect(p.delivered).toHaveLength(1); // the phone got it once
  });

  it("Twilio refusing the number (21211) fails the message at once; it is listed without the number and a requeue sends it", async () => {
    const p = await provider("twilio");
    const sender = createTwilioSmsSender({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, from: "+15005550006", apiUrl: p.url });
    const outcomes: DeliveryOutcome[] = [];
    const w = worker(sender, { onAttempt: (o) => outcomes.push(o) });
    await enqueue("m1", code("+33612345678", "482913", "600"));
    p.answerNext({ status: 400, body: { code: 21211, message: "The 'To' number +33612345678 is not a valid phone number.", status: 400 } });

    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "failed", attempts: 1, last_error: "TWILIO 400 21211", last_error_class: "permanent" });
    expect(outcomes).toEqual([{ kind: "phone_code", channel: "sms", result: "failed", failure: expect.objectContaining({ class: "permanent" }) }]);
    t += 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect(p.requests).toHaveLength(1);
    const listed = await stores.outbox.listFailed({ limit: 10 });
    expect(listed).toMatchObject([{ id: "m1", kind: "phone_code", lastError: "TWILIO 400 21211", requeueable: true }]);
    expect(JSON.stringify(listed)).not.toContain("612345678");

    // 500 and 429 are retried, the same message going out once when Twilio accepts it.
    t += 60_000;
    p.answerNext({ status: 500, body: { code: 20500, status: 500 } }, { status: 429, body: { code: 20429, status: 429 } });
    expect(await stores.outbox.requeue({ id: "m1", now: t })).toMatchObject({ outcome: "requeued" });
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "pending", last_error: "TWILIO 500 20500" });
    t += 10_000;
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "pending", last_error: "TWILIO 429 20429" });
    t += 20_000;
    expect(await w.runOnce()).toBe(1);
    expect(p.delivered).toEqual([
      { to: "+33612345678", body: expect.stringMatching(/^482913 is your Acme ID code\. It expires in 10 hours\./), from: "+15005550006" },
    ]);
  });

  it("a code is not sent once it has expired (the provider was down longer than its lifetime)", async () => {
    const p = await provider("webhook");
    await p.stop();
    const w = worker(webhook(p));
    await enqueue("m1", code("+33612345678", "482913", "5"));
    expect(await w.runOnce()).toBe(0);
    await p.start();
    t += 5 * 60_000;
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({
      status: "failed",
      last_error: "the code expired before it could be sent",
      last_error_class: "permanent",
      payload: null,
    });
    expect(p.requests).toEqual([]);
  });

  it("without a provider an SMS stays queued (production) or is given up (SMS_PROVIDER=none), never sent elsewhere", async () => {
    const w = worker(undefined);
    await enqueue("m1", code("+33612345678", "482913"));
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "pending", last_error: "SMS_NOT_CONFIGURED", last_error_class: "transient" });

    const off = worker(disabledSmsSender, { owner: "worker-b" });
    await enqueue("m2", code("+33612345678", "482914"));
    expect(await off.runOnce()).toBe(0);
    expect(await row("m2")).toMatchObject({ status: "failed", last_error: "SMS_DISABLED", last_error_class: "permanent" });
  });

  it("a PHONE_CODE without its code or lifetime is not rendered and not sent", async () => {
    const p = await provider("webhook");
    const w = worker(webhook(p));
    await enqueue("m1", { kind: MessageKind.PHONE_CODE, to: "+33612345678", locale: "en", variables: { minutes: "5" } });
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "failed", last_error: "message cannot be rendered", payload: null });
    expect(p.requests).toEqual([]);
  });
});

describe.each(BACKENDS.flatMap((backend) => (["webhook", "twilio"] as const).map((kind) => [backend, kind] as const)))(
  "the service on %s with the %s SMS provider",
  (backend: BackendName, kind) => {
    it("PHONE_CODE messages queued in the outbox store arrive, sealed until sent", async () => {
      const p = await provider(kind);
      const env: Record<string, string> =
        kind === "webhook"
          ? { SMS_WEBHOOK_URL: `${p.url}/sms`, SMS_WEBHOOK_SECRET: SECRET }
          : { TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_AUTH_TOKEN: AUTH_TOKEN, TWILIO_FROM: "Acme", TWILIO_API_URL: p.url };
      const server: TestServer = await startTestServer(backend, { env });
      cleanup.push(() => server.close());
      expect(server.config.sms?.provider).toBe(kind);
      const { accountId } = await server.runtime.bootstrap.createSuperAdmin({ email: `sms.${Date.now()}@example.test`, password: PASSWORD, promote: false });
      const found = await server.runtime.durable.accounts.getAccount(DEFAULT_TENANT_ID, accountId);
      const dataKey = keyringFor(server.config).unwrapDataKey(accountId, found!.wrappedKey);

      const numbers = ["+33612345678", "+447400123456"];
      const messages = numbers.map((to, i) =>
        sealMessage(dataKey, { id: accountId, tenantId: DEFAULT_TENANT_ID }, code(to, `77331${i}`, "5", i ? "en" : "fr"), Date.now()),
      );
      await server.runtime.durable.outbox.enqueue(messages);

      // Sealed at rest: neither the number nor the code is readable in the row.
      const queued = (await server.rawRows("outbox")).filter((r) => r.kind === "phone_code");
      expect(queued).toHaveLength(2);
      for (const r of queued) expect(JSON.stringify(r)).not.toMatch(/773310|773311|612345678|7400123456/);

      server.runtime.outboxWorker.nudge();
      const deadline = Date.now() + 10_000;
      while (p.delivered.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(p.delivered.map((s) => [s.to, s.body.slice(0, 6)]).sort()).toEqual([
        ["+33612345678", "773310"],
        ["+447400123456", "773311"],
      ]);
      expect(p.delivered.find((s) => s.to === "+33612345678")!.body).toContain("est votre code");
      if (kind === "webhook") expect(p.delivered.map((s) => s.messageId).sort()).toEqual(messages.map((m) => m.id).sort());
      const sent = (await server.rawRows("outbox")).filter((r) => r.kind === "phone_code");
      expect(sent.map((r) => [r.status, r.payload])).toEqual([
        ["sent", null],
        ["sent", null],
      ]);
      // Once more through the loop: nothing is sent twice.
      server.runtime.outboxWorker.nudge();
      await new Promise((r) => setTimeout(r, 200));
      expect(p.delivered).toHaveLength(2);
    });
  },
);

describe("the test server's SMS provider, and none", () => {
  async function queueCode(server: TestServer, c: string): Promise<void> {
    const { accountId } = await server.runtime.bootstrap.createSuperAdmin({ email: `nosms.${Date.now()}@example.test`, password: PASSWORD, promote: false });
    const found = await server.runtime.durable.accounts.getAccount(DEFAULT_TENANT_ID, accountId);
    const dataKey = keyringFor(server.config).unwrapDataKey(accountId, found!.wrappedKey);
    await server.runtime.durable.outbox.enqueue([sealMessage(dataKey, { id: accountId, tenantId: DEFAULT_TENANT_ID }, code("+33612345678", c), Date.now())]);
    server.runtime.outboxWorker.nudge();
  }

  async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it("a test server has its own signed-webhook provider, so flows under test can read their SMS", async () => {
    const server = await startTestServer("embedded");
    cleanup.push(() => server.close());
    expect(server.config.sms?.provider).toBe("webhook");
    await queueCode(server, "924612");
    expect((await server.waitForSms("+33612345678")).body).toMatch(/^924612 is your Identity code/);
    expect(server.sms!.requests.every((r) => /^sha256=[0-9a-f]{64}$/.test(String(r.headers["x-signature"])))).toBe(true);
  });

  it("development mode writes the code to the log (the number redacted) instead of sending it", async () => {
    const logLines: string[] = [];
    const server = await startTestServer("embedded", { env: { LOG_LEVEL: "info" }, logLines, sms: false });
    cleanup.push(() => server.close());
    expect(server.config.sms).toBeUndefined();
    expect(logLines.join("\n")).toContain("SMS (phone codes) written to this log");
    await queueCode(server, "924613");
    await until("the SMS in the log", () => logLines.some((l) => l.includes("sms (development sender, not sent)")));
    const line = logLines.find((l) => l.includes("sms (development sender, not sent)"))!;
    expect(line).toContain("924613 is your Identity code");
    expect(line).not.toContain("612345678");
    expect(JSON.parse(line).sms.to).toBe("[redacted]");
  });

  it.skipIf(!BACKENDS.includes("mysql"))("production keeps the SMS queued and never logs the code or the number", async () => {
    const logLines: string[] = [];
    const server = await startTestServer("mysql", {
      env: { LOG_LEVEL: "trace", OUTBOX_RETRY_BASE_SECONDS: "1", OUTBOX_RETRY_MAX_DELAY_SECONDS: "1" },
      logLines,
      sms: false,
    });
    cleanup.push(() => server.close());
    expect(server.config.development).toBe(false);
    await queueCode(server, "924614");
    await until("a failed attempt", async () => (await server.rawRows("outbox")).some((r) => r.last_error === "SMS_NOT_CONFIGURED"));
    expect((await server.rawRows("outbox")).find((r) => r.kind === "phone_code")).toMatchObject({ status: "pending", last_error_class: "transient" });
    const log = logLines.join("\n");
    expect(log).toContain("message delivery failed; retrying later");
    expect(log).not.toContain("924614");
    expect(log).not.toContain("612345678");
    expect(log).not.toContain("development sender");
  });
});
