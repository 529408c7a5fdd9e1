// The outbox worker against the embedded SQLite store and a real SMTP server
// (smtp-server) on a local port: delivery, retries, give-up, restarts and leases.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { freePort, startSmtp, type Received } from "../support/smtp.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";
import type { OutboxMessage } from "../../src/domain/ports/outbox.ts";
import type { DurableStores } from "../../src/domain/ports/stores.ts";
import { createSmtpTransport } from "../../src/delivery/mail-transport.ts";
import { createOutboxWorker, DeliveryError, type OutboxWorker, type OutboxWorkerOptions } from "../../src/delivery/outbox-worker.ts";
import type { MailTransport } from "../../src/delivery/types.ts";
import type { MessagePayload } from "../../src/domain/messages.ts";

let t: number;
let database: SqlDatabase;
let stores: DurableStores;
let inbox: Received[];
const cleanup: Array<() => Promise<void>> = [];

beforeEach(async () => {
  t = Date.UTC(2025, 0, 1);
  inbox = [];
  database = openSqlDatabase({ sqlitePath: ":memory:" });
  await migrateToLatest(database.db);
  stores = createSqlStores(database, openSqlDatabase({ sqlitePath: ":memory:" })); // the key store is not used here
});

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  await database.close();
});

function payload(to: string, link = "https://id.example.com/verify?t=tok-1"): MessagePayload {
  return { kind: "verify_email", to, locale: "en", variables: { link, expiresInMinutes: "1440" } };
}

async function enqueue(id: string, p: MessagePayload | string): Promise<OutboxMessage> {
  const message: OutboxMessage = {
    id,
    tenantId: "tenant-1", // no tenant row: the outbox only keeps the ids
    accountId: `account-${id}`,
    kind: typeof p === "string" ? "verify_email" : p.kind,
    payloadSealed: typeof p === "string" ? p : JSON.stringify(p),
    createdAt: t,
  };
  await stores.outbox.enqueue([message]);
  return message;
}

function transportTo(port: number): MailTransport {
  const transport = createSmtpTransport(`smtp://127.0.0.1:${port}`, "Acme ID <no-reply@acme.test>");
  cleanup.push(() => transport.close());
  return transport;
}

function worker(transport: MailTransport, overrides: Partial<OutboxWorkerOptions> = {}): OutboxWorker {
  const w = createOutboxWorker({
    outbox: stores.outbox,
    openPayload: async (m) => JSON.parse(m.payloadSealed) as MessagePayload,
    transport,
    productName: "Acme ID",
    now: () => t,
    owner: "worker-a",
    backoffMs: (attempt) => attempt * 10_000,
    ...overrides,
  });
  cleanup.push(() => w.stop());
  return w;
}

const row = (id: string) => database.db.selectFrom("outbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

describe("outbox worker over SQLite and SMTP", () => {
  it("delivers a queued message exactly once, with the right subject and body to the right address", async () => {
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    const w = worker(transportTo(smtp.port));
    await enqueue("m1", payload("jane@example.com"));

    // Two passes asked for at once do not overlap: one sends, the other finds nothing.
    const counts = await Promise.all([w.runOnce(), w.runOnce()]);
    expect(counts.sort()).toEqual([0, 1]);
    expect(await w.runOnce()).toBe(0);

    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.envelopeTo).toEqual(["jane@example.com"]);
    expect(inbox[0]!.to).toBe("jane@example.com");
    expect(inbox[0]!.subject).toBe("Confirm your email address for Acme ID");
    expect(inbox[0]!.text).toContain("https://id.example.com/verify?t=tok-1");
    expect(inbox[0]!.text).toContain("24 hours");

    const sent = await row("m1");
    expect(sent).toMatchObject({ status: "sent", payload: null, attempts: 1, lock_owner: null });
    expect(Number(sent.sent_at)).toBe(t);
  });

  it("one bad message does not stop the others", async () => {
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    const errors: unknown[] = [];
    const w = worker(transportTo(smtp.port), { onError: (e) => errors.push(e) });
    await enqueue("bad-json", "{not json");
    await enqueue("no-link", { kind: "verify_email", to: "x@example.com", locale: "en", variables: {} });
    await enqueue("good", payload("good@example.com"));

    expect(await w.runOnce()).toBe(1);
    expect(inbox.map((m) => m.to)).toEqual(["good@example.com"]);
    expect(errors).toHaveLength(2);
    // Unreadable now may be readable later (a key store outage): retried.
    expect(await row("bad-json")).toMatchObject({ status: "pending", attempts: 1 });
    // A message that cannot be rendered will never be: given up at once.
    expect(await row("no-link")).toMatchObject({ status: "failed", attempts: 1, payload: null });
  });

  it("retries after the SMTP server was down, and delivers once when it is back", async () => {
    const port = await freePort();
    const errors: unknown[] = [];
    const w = worker(transportTo(port), { onError: (e) => errors.push(e) });
    await enqueue("m1", payload("jane@example.com"));

    expect(await w.runOnce()).toBe(0);
    expect(errors).toHaveLength(1);
    const failed = await row("m1");
    expect(failed).toMatchObject({ status: "pending", attempts: 1, lock_owner: null });
    expect(Number(failed.next_attempt_at)).toBe(t + 10_000);
    expect(failed.last_error).toBeTruthy();
    expect(failed.payload).not.toBeNull();

    const smtp = await startSmtp(inbox, port);
    cleanup.push(() => smtp.close());
    expect(await w.runOnce()).toBe(0); // not due yet
    expect(inbox).toHaveLength(0);

    t += 10_000;
    expect(await w.runOnce()).toBe(1);
    t += 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.to).toBe("jane@example.com");
    expect(await row("m1")).toMatchObject({ status: "sent", attempts: 2, payload: null });
  });

  // A 550 now fails a message at once (below); maxAttempts is reached through transient refusals.
  it("gives up after maxAttempts: status failed, payload kept sealed for a requeue, last error kept without the address", async () => {
    const smtp = await startSmtp(inbox, 0, 451);
    cleanup.push(() => smtp.close());
    const w = worker(transportTo(smtp.port), { maxAttempts: 3 });
    await enqueue("m1", payload("jane@example.com"));

    for (let i = 0; i < 3; i++) {
      expect(await w.runOnce()).toBe(0);
      t += 3_600_000;
    }
    const given = await row("m1");
    expect(given).toMatchObject({ status: "failed", attempts: 3, lock_owner: null, last_error_class: "transient" });
    // Kept (sealed under the account's key in production) so an operator can requeue it; retention deletes it.
    expect(given.payload).toBe(JSON.stringify(payload("jane@example.com")));
    expect(given.last_error).toMatch(/451/);
    expect(given.last_error).not.toContain("jane@example.com");

    t += 24 * 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect((await row("m1")).attempts).toBe(3);
    expect(inbox).toHaveLength(0);
  });

  it("a message queued before a restart is delivered once by the next process", async () => {
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    await enqueue("m1", payload("jane@example.com"));

    const first = worker(transportTo(smtp.port), { owner: "process-1" });
    first.start();
    await first.stop(); // shut down before its first pass ran
    expect(inbox).toHaveLength(0);
    expect(await row("m1")).toMatchObject({ status: "pending", attempts: 0 });

    const second = worker(transportTo(smtp.port), { owner: "process-2" });
    expect(await second.runOnce()).toBe(1);
    expect(await second.runOnce()).toBe(0);
    expect(inbox).toHaveLength(1);
  });

  it("a message leased by a dead worker waits for the lease to expire, then is delivered once", async () => {
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    await enqueue("m1", payload("jane@example.com"));
    // The dead worker leased the message and vanished before sending.
    const leased = await stores.outbox.claimDue({ now: t, limit: 10, owner: "dead", leaseMs: 60_000 });
    expect(leased.map((m) => m.id)).toEqual(["m1"]);

    const w = worker(transportTo(smtp.port), { owner: "alive", leaseMs: 60_000 });
    expect(await w.runOnce()).toBe(0);
    t += 59_999;
    expect(await w.runOnce()).toBe(0);
    expect(inbox).toHaveLength(0);

    t += 1;
    expect(await w.runOnce()).toBe(1);
    // The dead worker coming back cannot undo or repeat it.
    await stores.outbox.markFailed("m1", "dead", "late", t + 1000);
    await stores.outbox.markSent("m1", "dead", t);
    t += 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect(inbox).toHaveLength(1);
    expect(await row("m1")).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("drops a message whose payload can no longer be opened, without retry", async () => {
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    const openPayload = vi.fn(async () => undefined);
    const w = worker(transportTo(smtp.port), { openPayload });
    await enqueue("m1", payload("jane@example.com"));

    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "failed", attempts: 1, payload: null, last_error: "payload can no longer be opened" });
    t += 24 * 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect(openPayload).toHaveBeenCalledTimes(1);
    expect(inbox).toHaveLength(0);
  });

  it("the started loop sends on its own and wakes early when nudged", async () => {
    const smtp = await startSmtp(inbox);
    cleanup.push(() => smtp.close());
    const w = worker(transportTo(smtp.port), { pollIntervalMs: 60_000 });
    await enqueue("m1", payload("one@example.com"));
    w.start();
    await vi.waitFor(() => expect(inbox).toHaveLength(1));

    // The next poll is a minute away; a nudge sends the new message now.
    await enqueue("m2", payload("two@example.com"));
    w.nudge();
    await vi.waitFor(() => expect(inbox).toHaveLength(2));
    await w.stop();
    expect(inbox.map((m) => m.to)).toEqual(["one@example.com", "two@example.com"]);
  });

  it("survives an SMTP outage of hours: retried with growing, jittered delays, delivered exactly once when the server is back", async () => {
    const port = await freePort();
    const errors: unknown[] = [];
    // The default policy (30 s doubling up to an hour, two days), with the jitter pinned to its middle.
    const w = worker(transportTo(port), { backoffMs: undefined, random: () => 0.5, onError: (e) => errors.push(e) });
    await enqueue("m1", payload("jane@example.com"));
    const start = t;

    const delays: number[] = [];
    while (t - start < 6 * 3_600_000) {
      expect(await w.runOnce()).toBe(0);
      const pending = await row("m1");
      expect(pending).toMatchObject({ status: "pending", last_error_class: "transient" });
      delays.push(Number(pending.next_attempt_at) - t);
      t = Number(pending.next_attempt_at);
    }
    // Before, the 8th failure (after ~3 minutes) was the last: the message was lost for good.
    expect(delays.length).toBeGreaterThan(8);
    expect(delays.slice(0, 8)).toEqual([22_500, 45_000, 90_000, 180_000, 360_000, 720_000, 1_440_000, 2_700_000]);
    expect(new Set(delays.slice(8))).toEqual(new Set([2_700_000])); // capped at an hour, minus the jitter
    expect(errors.every((e) => e instanceof DeliveryError && e.failure.class === "transient")).toBe(true);
    expect((await row("m1")).last_error).toBe("ESOCKET ECONNREFUSED CONN");

    const smtp = await startSmtp(inbox, port);
    cleanup.push(() => smtp.close());
    expect(await w.runOnce()).toBe(1);
    t += 3 * 24 * 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.envelopeTo).toEqual(["jane@example.com"]);
    expect(await row("m1")).toMatchObject({ status: "sent", attempts: delays.length + 1, payload: null });
  });

  it("a 550 for the recipient fails the message at once, is never retried, is listed, and a requeue delivers it once the server accepts", async () => {
    const smtp = await startSmtp(inbox, 0, 550);
    cleanup.push(() => smtp.close());
    const errors: unknown[] = [];
    const w = worker(transportTo(smtp.port), { onError: (e) => errors.push(e) });
    await enqueue("m1", payload("jane@example.com"));

    expect(await w.runOnce()).toBe(0);
    const failed = await row("m1");
    expect(failed).toMatchObject({ status: "failed", attempts: 1, last_error_class: "permanent", last_error: "EENVELOPE 550 RCPT TO", failed_at: t });
    expect(smtp.recipientsOffered()).toBe(1);
    t += 3 * 24 * 3_600_000;
    expect(await w.runOnce()).toBe(0);
    expect(smtp.recipientsOffered()).toBe(1);

    // What the worker reports holds codes only, though the server's reply named the address.
    expect(errors).toHaveLength(1);
    const reported = errors[0] as DeliveryError;
    expect(reported.failure).toStrictEqual({ class: "permanent", code: "EENVELOPE", responseCode: 550, command: "RCPT TO" });
    expect(reported.nextAttemptAt).toBeNull();
    expect(`${JSON.stringify(reported)} ${reported.message} ${reported.stack}`).not.toContain("jane@example.com");

    const listed = await stores.outbox.listFailed({ limit: 10 });
    expect(listed).toMatchObject([{ id: "m1", tenantId: "tenant-1", kind: "verify_email", attempts: 1, lastErrorClass: "permanent", requeueable: true }]);
    expect(JSON.stringify(listed)).not.toContain("jane@example.com");

    // Requeued while the server still refuses: refused again, once.
    expect(await stores.outbox.requeue({ id: "m1", now: t })).toMatchObject({ outcome: "requeued" });
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "failed", attempts: 1 }); // a requeue starts the count over

    smtp.refuse(null);
    t += 60_000;
    expect(await stores.outbox.requeue({ id: "m1", now: t })).toMatchObject({ outcome: "requeued" });
    expect(await w.runOnce()).toBe(1);
    expect(await w.runOnce()).toBe(0);
    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.envelopeTo).toEqual(["jane@example.com"]);
    expect(await row("m1")).toMatchObject({ status: "sent", attempts: 1, payload: null });
    expect(await stores.outbox.listFailed({ limit: 10 })).toStrictEqual([]);
  });

  it("retries a transient failure until the maximum age, the last attempt at the deadline; a requeue restarts the age", async () => {
    const port = await freePort();
    const maxAgeMs = 3 * 3_600_000;
    const w = worker(transportTo(port), { backoffMs: undefined, random: () => 1, retry: { baseDelayMs: 60_000, maxDelayMs: 3_600_000, maxAgeMs } });
    const queued = await enqueue("m1", payload("jane@example.com"));

    const attemptsAt: number[] = [];
    for (;;) {
      attemptsAt.push(t);
      expect(await w.runOnce()).toBe(0);
      const current = await row("m1");
      if (current.status === "failed") break;
      t = Number(current.next_attempt_at);
    }
    expect(attemptsAt.at(-1)).toBe(queued.createdAt + maxAgeMs);
    expect(attemptsAt.every((at) => at <= queued.createdAt + maxAgeMs)).toBe(true);
    expect(await row("m1")).toMatchObject({
      status: "failed",
      last_error_class: "transient",
      attempts: attemptsAt.length,
      failed_at: queued.createdAt + maxAgeMs,
    });
    expect((await row("m1")).payload).not.toBeNull();

    // Requeued the next day: a fresh start (age and backoff), so the next failure is retried again, soon.
    t += 24 * 3_600_000;
    expect(await stores.outbox.requeue({ id: "m1", now: t })).toMatchObject({ outcome: "requeued" });
    expect(await w.runOnce()).toBe(0);
    expect(await row("m1")).toMatchObject({ status: "pending", next_attempt_at: t + 60_000, attempts: 1 });
  });
});
