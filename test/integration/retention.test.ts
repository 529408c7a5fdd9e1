// Retention over a real server, with an injected clock instead of waiting:
// unverified sign-ups past unverified_retention, delivered messages past
// delivered_message_retention and audit events past audit_event_retention are
// deleted by one run (what the background job does every 15 minutes), nothing
// younger is, and the audit trail still verifies from its checkpoint.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const DAY = 86_400_000;

describe.each(BACKENDS)("retention on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let clockOffset = 0;
  const now = () => Date.now() + clockOffset;

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now, purgeIntervalMs: 0 } });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  const rows = async (table: string, accountId: string) => (await server.rawRows(table)).filter((r) => r.account_id === accountId);

  it("deletes what is past each retention, and nothing younger", async () => {
    const tag = `${backend}.${Date.now()}`;
    const verifiedEmail = `kept.${tag}@example.test`;
    await api.call(IdentityService.method.signUp, { email: verifiedEmail, password: PASSWORD, locale: "en" });
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(verifiedEmail)).text) });
    await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: verifiedEmail, password: PASSWORD } } });
    const unverifiedEmail = `never-verified.${tag}@example.test`;
    await api.call(IdentityService.method.signUp, { email: unverifiedEmail, password: PASSWORD, locale: "en" });
    await server.waitForMail(unverifiedEmail);
    const sent = await rows("outbox", verified.accountId);
    expect(sent.map((r) => r.status)).toEqual(["sent"]);
    const events = await server.runtime.app.audit.list({ tenantId: "default", pageSize: 500, pageToken: "" });
    expect(events.events.length).toBeGreaterThanOrEqual(4);

    // Day 8: only the unverified sign-up (7 days) is due.
    clockOffset = 8 * DAY;
    expect(await server.runtime.retention.run(now())).toEqual({ unverifiedAccounts: 1, guestAccounts: 0, deliveredMessages: 0, auditEvents: 0, events: 0 });
    expect((await server.rawRows("accounts")).some((r) => r.id === verified.accountId)).toBe(true);

    // A message still pending (the worker is stopped) is never deleted, however old.
    await server.runtime.outboxWorker.stop();
    try {
      await api.call(IdentityService.method.startPasswordReset, { email: verifiedEmail, locale: "" });
      // Day 31: delivered messages (30 days) are due — the sent one, and the sign-up's of the purged account went with it.
      clockOffset = 31 * DAY;
      const day31 = await server.runtime.retention.run(now());
      expect(day31.deliveredMessages).toBeGreaterThanOrEqual(1);
      expect(day31.auditEvents).toBe(0);
      expect((await rows("outbox", verified.accountId)).map((r) => r.status)).toEqual(["pending"]);
    } finally {
      server.runtime.outboxWorker.start();
    }

    // Day 366: the audit events of the first day (365 days) are due; later ones stay and the chain verifies.
    await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: verifiedEmail, password: PASSWORD } } });
    clockOffset = 366 * DAY;
    const day366 = await server.runtime.retention.run(now());
    expect(day366.auditEvents).toBeGreaterThanOrEqual(events.events.length);
    const left = await server.runtime.app.audit.list({ tenantId: "default", pageSize: 500, pageToken: "" });
    expect(left.events.length).toBeGreaterThan(0);
    expect(left.events.every((e) => e.at >= Date.now() + 31 * DAY - 60_000)).toBe(true);
    expect(await server.runtime.app.audit.verify("default")).toMatchObject({ intact: true, broken: [] });
    // Nothing more is due: a second run deletes nothing.
    expect(await server.runtime.retention.run(now())).toEqual({ unverifiedAccounts: 0, guestAccounts: 0, deliveredMessages: 0, auditEvents: 0, events: 0 });
    // The person is untouched by all of it.
    const late = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: verifiedEmail, password: PASSWORD } } });
    const { account } = await api.call(AccountService.method.getAccount, {}, { authorization: `Bearer ${late.sessionToken}` });
    expect(account?.id).toBe(verified.accountId);
  });

  it("follows each tenant's own settings", async () => {
    // The clock only moves forward (events are stamped with it, in chain order).
    const start = 400 * DAY;
    clockOffset = start;
    await server.runtime.app.tenants.update("default", (t) => ({
      name: t.name,
      settings: { ...t.settings, deliveredMessageRetentionMs: DAY, auditEventRetentionMs: 2 * DAY },
    }));
    const email = `short.${backend}.${Date.now()}@example.test`;
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    expect((await rows("outbox", verified.accountId)).map((r) => r.status)).toEqual(["sent"]);
    clockOffset = start + DAY + 60_000;
    const day1 = await server.runtime.retention.run(now());
    expect(day1.deliveredMessages).toBeGreaterThanOrEqual(1);
    expect(await rows("outbox", verified.accountId)).toEqual([]);
    // Only events older than two days went (those of the first test): this test's stay.
    const mine = (await server.runtime.app.audit.list({ tenantId: "default", pageSize: 500, pageToken: "" })).events;
    expect(mine.length).toBeGreaterThanOrEqual(2);
    expect(mine.every((e) => e.at >= Date.now() + start - 60_000)).toBe(true);
    clockOffset = start + 2 * DAY + 60_000;
    expect((await server.runtime.retention.run(now())).auditEvents).toBeGreaterThanOrEqual(2);
    expect(await server.runtime.app.audit.verify("default")).toMatchObject({ intact: true });
  });
});
