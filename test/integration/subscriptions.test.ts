// Subscriptions that act on their dates, over a real server on every backend,
// with an injected clock instead of waiting: a trial started at sign-up moves to
// the free plan at its end (ValidateSession over grpc-js — the fast path and its
// cache — shows it at once; the mail arrives once); a renewing subscription gets
// exactly one reminder 30 days before its period end, and one more only for a
// new period; a billing system's API key holding only subscriptions.write sets
// subscriptions over gRPC, and a retried call with the same idempotency key
// applies once. On MariaDB + Redis, two instances running the job at once never
// send anything twice.
import { Code } from "@connectrpc/connect";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { SubscriptionStatus as Status } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { createLogger } from "../../src/server/logger.ts";
import { createRuntime, type Runtime } from "../../src/server/wiring.ts";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const ROOT_PASSWORD = "operator's own long passphrase 42";
const DAY = 86_400_000;
let seq = 0;
const uniqueEmail = (tag: string) => `subs.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const timestamp = (ms: number) => ({ seconds: BigInt(Math.floor(ms / 1000)), nanos: 0 });

async function reasonOf(call: Promise<unknown>): Promise<string> {
  const e = await refusal(call);
  return `${Code[e.code]} ${e.findDetails(ErrorInfoSchema)[0]?.reason ?? ""}`.trim();
}

/** Waits until `check` holds (the outbox worker delivers within a second or so). */
async function eventually(check: () => boolean, what: string, ms = 10_000) {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(BACKENDS)("subscriptions on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let grpc: Caller;
  let offset = 0;
  const now = () => Date.now() + offset;
  let rootEmail: string;
  let rootToken: { token: string; at: number };
  /** The super admin's session, signed in again when the clock moved past its idle timeout. */
  let root: Record<string, string>;
  async function asRoot() {
    if (Math.abs(now() - rootToken.at) > DAY / 2) {
      const signedIn = await api.call(SessionService.method.signIn, {
        method: { case: "emailPassword", value: { email: rootEmail, password: ROOT_PASSWORD } },
      });
      rootToken = { token: signedIn.sessionToken, at: now() };
    }
    root = bearer(rootToken.token);
    return root;
  }

  const signIn = async (email: string) =>
    (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;
  const validate = (token: string) => grpc.call(SessionService.method.validateSession, { sessionToken: token });
  const mailsTo = (email: string, subject: RegExp) => server.inbox.filter((m) => m.to === email && subject.test(m.subject));

  async function signUp(tag: string, locale = "en") {
    const email = uniqueEmail(tag);
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale });
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    return { email, accountId: verified.accountId, token: verified.sessionToken };
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now, purgeIntervalMs: 0 } });
    api = createCaller("connect-json-h1", server.baseUrl);
    grpc = createCaller("grpc-js", server.baseUrl);
    rootEmail = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
    rootToken = { token: "", at: Number.NEGATIVE_INFINITY };
    await asRoot();
    const plans = [
      { id: "free", name: "Free", rank: 0, entitlements: ["notes.read"], free: true },
      { id: "basic", name: "Basic", rank: 10, entitlements: ["notes.read", "notes.write"] },
      { id: "pro", name: "Pro", rank: 20, entitlements: ["notes.read", "notes.write", "exports"], trialDays: 14 },
    ];
    for (const plan of plans) await api.call(AdminService.method.setPlan, { plan, reason: "launch pricing" }, root);
    await api.call(
      AdminService.method.updateTenant,
      {
        tenant: { id: "default", settings: { trialPlan: "pro", trialStart: "sign_up" } },
        updateMask: { paths: ["settings.trial_plan", "settings.trial_start"] },
      },
      root,
    );
  });
  afterAll(async () => {
    api?.close();
    grpc?.close();
    await server?.close();
  });

  it("plans: listed by rank, one free plan, checked, audited", async () => {
    const { plans } = await api.call(AdminService.method.listPlans, {}, root);
    expect(plans.map((p) => [p.id, p.free])).toEqual([
      ["free", true],
      ["basic", false],
      ["pro", false],
    ]);
    expect(await reasonOf(api.call(AdminService.method.setPlan, { plan: { id: "Bad Id", name: "x" }, reason: "r" }, root))).toBe(
      "InvalidArgument INVALID_ARGUMENT",
    );
    expect(await reasonOf(api.call(AdminService.method.deletePlan, { planId: "pro", reason: "r" }, root))).toBe("FailedPrecondition PLAN_IN_USE");
    expect(await reasonOf(api.call(AdminService.method.deletePlan, { planId: "free", reason: "r" }, root))).toBe("FailedPrecondition PLAN_IN_USE");
    expect(await reasonOf(api.call(AdminService.method.deletePlan, { planId: "nope", reason: "r" }, root))).toBe("NotFound PLAN_NOT_FOUND");
    expect(
      await reasonOf(
        api.call(
          AdminService.method.updateTenant,
          { tenant: { id: "default", settings: { trialPlan: "basic" } }, updateMask: { paths: ["settings.trial_plan"] } },
          root,
        ),
      ),
    ).toBe("InvalidArgument INVALID_ARGUMENT");
    const events = await server.runtime.app.audit.list({ tenantId: "default", action: "plan.set", pageSize: 50, pageToken: "" });
    expect(events.events.filter((e) => e.outcome === "success").map((e) => e.target)).toEqual(expect.arrayContaining(["plan:free", "plan:basic", "plan:pro"]));
    expect(events.events.every((e) => e.reason !== "")).toBe(true);
  });

  it("a trial started at sign-up moves to the free plan at its end: ValidateSession shows it at once, the mail arrives once", async () => {
    const person = await signUp("trial", "fr");
    let answer = await validate(person.token);
    expect([answer.planId, answer.subscriptionStatus, answer.entitlements]).toEqual(["pro", Status.TRIALING, ["notes.read", "notes.write", "exports"]]);
    // A signed access token carries the same plan, verified as a third-party service would.
    const { accessToken } = await api.call(SessionService.method.issueAccessToken, {}, bearer(person.token));
    const { payload } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`)), {
      issuer: server.config.accessTokenIssuer,
      audience: "default",
      currentDate: new Date(now()),
    });
    expect([payload.plan, payload.plan_status, payload.entitlements]).toEqual(["pro", "trialing", ["notes.read", "notes.write", "exports"]]);

    // Day 15: signed in again (the clock moved past the idle timeout), validated twice so the answer is cached.
    offset = 15 * DAY;
    const token = await signIn(person.email);
    for (let i = 0; i < 3; i++) expect((await validate(token)).planId).toBe("pro");

    const run = await server.runtime.subscriptionJob.run(now());
    expect(run.expired).toBeGreaterThanOrEqual(1);
    answer = await validate(token);
    expect([answer.planId, answer.subscriptionStatus, answer.entitlements]).toEqual(["free", Status.EXPIRED, ["notes.read"]]);

    const mail = await server.waitForMail(person.email, (m) => /essai/.test(m.subject));
    // The French template (the subject is MIME-encoded; the body is read decoded).
    expect(mail.text).toMatch(/Votre essai de l.offre Pro/);
    expect(mail.text).toMatch(/maintenant sur l.offre Free/);
    // Run again (a rerun, another instance): nothing more is due for this account.
    await server.runtime.subscriptionJob.run(now());
    await new Promise((r) => setTimeout(r, 500));
    expect(mailsTo(person.email, /essai/)).toHaveLength(1);

    const { account } = await api.call(AdminService.method.getUser, { accountId: person.accountId, reason: "support ticket 1" }, await asRoot());
    expect(account?.subscription).toMatchObject({ plan: "free", status: Status.EXPIRED, renews: false });
    const audit = await server.runtime.app.audit.list({ tenantId: "default", target: `account:${person.accountId}`, pageSize: 50, pageToken: "" });
    expect(audit.events.filter((e) => e.action === "subscription.expired").map((e) => e.actor)).toEqual(["system"]);
    offset = 0;
  });

  it("a billing system's key holding only subscriptions.write: over gRPC, idempotent, one reminder per period, then expiry when not renewed", async () => {
    const { secret } = await api.call(
      AdminService.method.createApiKey,
      { tenantId: "default", name: "billing", permissions: ["subscriptions.write"] },
      await asRoot(),
    );
    const billing = bearer(secret);
    const person = await signUp("billing");
    const start = now();
    const periodEnd = start + 40 * DAY;

    const set = (key: string, subscription: Record<string, unknown>) =>
      grpc.call(AdminService.method.setSubscription, { accountId: person.accountId, subscription, idempotencyKey: key, reason: "stripe webhook" }, billing);
    const first = await set("evt_1", { plan: "basic", status: Status.ACTIVE, expireTime: timestamp(periodEnd), renews: true });
    expect(first.account?.subscription).toMatchObject({ plan: "basic", status: Status.ACTIVE, renews: true });
    expect((await validate(person.token)).planId).toBe("basic");
    // The webhook retried with the same event id (and, say, a stale payload): applied once.
    const retried = await set("evt_1", { plan: "pro", status: Status.PAST_DUE, expireTime: timestamp(periodEnd), renews: true });
    expect(retried.account?.subscription).toMatchObject({ plan: "basic", status: Status.ACTIVE });
    expect((await validate(person.token)).planId).toBe("basic");
    // The audit trail tells the applied call from its retry.
    const trail = await api.call(
      AdminService.method.listAuditEvents,
      { action: "user.set_subscription", target: `account:${person.accountId}`, pageSize: 10 },
      await asRoot(),
    );
    expect(trail.events.map((e) => e.outcome)).toEqual(["success", "replayed"]);

    // The key can do nothing else (asked over Connect, whose errors carry the reason).
    expect(await reasonOf(api.call(AdminService.method.getUser, { accountId: person.accountId, reason: "r" }, billing))).toBe(
      "PermissionDenied PERMISSION_REQUIRED",
    );
    expect(await reasonOf(api.call(AdminService.method.setPlan, { plan: { id: "x", name: "X" }, reason: "r" }, billing))).toBe(
      "PermissionDenied API_KEY_NOT_ALLOWED",
    );
    expect(await reasonOf(set("evt_bad", { plan: "gold" }))).toBe("InvalidArgument INVALID_ARGUMENT");

    // 31 days before the end: not yet. 29 days before: one reminder; later runs in the same period send none.
    const reminders = () => mailsTo(person.email, /renews on/);
    offset = 9 * DAY;
    await server.runtime.subscriptionJob.run(now());
    offset = 11 * DAY;
    const day11 = await server.runtime.subscriptionJob.run(now());
    expect(day11.reminded).toBeGreaterThanOrEqual(1);
    offset = 12 * DAY;
    await server.runtime.subscriptionJob.run(now());
    await eventually(() => reminders().length >= 1, "the renewal reminder");
    await new Promise((r) => setTimeout(r, 500));
    expect(reminders()).toHaveLength(1);
    expect(reminders()[0]!.text).toContain(new Date(periodEnd).toISOString().slice(0, 10));

    // Renewed: a new period earns its own reminder, once.
    const nextEnd = periodEnd + 30 * DAY;
    await set("evt_2", { plan: "basic", status: Status.ACTIVE, expireTime: timestamp(nextEnd), renews: true });
    offset = 41 * DAY;
    await server.runtime.subscriptionJob.run(now());
    await server.runtime.subscriptionJob.run(now());
    await eventually(() => reminders().length >= 2, "the second period's reminder");
    await new Promise((r) => setTimeout(r, 500));
    expect(reminders()).toHaveLength(2);

    // Canceled (does not renew): at its end it moves to the free plan, told once.
    await set("evt_3", { plan: "basic", status: Status.CANCELED, expireTime: timestamp(nextEnd), renews: false });
    offset = nextEnd - start + DAY;
    const token = await signIn(person.email);
    expect((await validate(token)).planId).toBe("basic");
    await server.runtime.subscriptionJob.run(now());
    const answer = await validate(token);
    expect([answer.planId, answer.subscriptionStatus]).toEqual(["free", Status.EXPIRED]);
    await server.waitForMail(person.email, (m) => /subscription has ended/.test(m.subject));
    await server.runtime.subscriptionJob.run(now());
    await new Promise((r) => setTimeout(r, 500));
    expect(mailsTo(person.email, /subscription has ended/)).toHaveLength(1);

    const audit = await server.runtime.app.audit.list({ tenantId: "default", target: `account:${person.accountId}`, pageSize: 100, pageToken: "" });
    const actions = audit.events.map((e) => `${e.action} ${e.actor.split(":")[0]}`);
    expect(actions.filter((a) => a === "user.set_subscription api_key").length).toBeGreaterThanOrEqual(4);
    expect(actions.filter((a) => a === "subscription.renewal_reminder system")).toHaveLength(2);
    expect(actions.filter((a) => a === "subscription.expired system")).toHaveLength(1);

    // Listing by plan and status.
    await asRoot();
    const listed = await api.call(AdminService.method.listUsers, { plan: "free", subscriptionStatus: Status.EXPIRED, reason: "churn report" }, root);
    expect(listed.users.map((u) => u.id)).toContain(person.accountId);
    const active = await api.call(AdminService.method.listUsers, { subscriptionStatus: Status.ACTIVE, reason: "churn report" }, root);
    expect(active.users.map((u) => u.id)).not.toContain(person.accountId);
    offset = 0;
  });
});

describe.skipIf(!BACKENDS.includes("mysql"))("two instances running the subscription job on one MariaDB and Redis", () => {
  let server: TestServer;
  let second: Runtime;
  let api: Caller;
  let offset = 0;
  const now = () => Date.now() + offset;

  beforeAll(async () => {
    server = await startTestServer("mysql", { runtime: { now, purgeIntervalMs: 0 } });
    // The second instance delivers too (to the same SMTP capture): a message queued twice would arrive twice.
    second = await createRuntime(server.config, createLogger("silent"), { now, migrate: false, purgeIntervalMs: 0 });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await second?.close();
    await server?.close();
  });

  it("never sends twice: each ended trial is moved and told once, each reminder sent once", async () => {
    const tenantId = "default";
    await server.runtime.app.subscriptions.setPlan(tenantId, { id: "free", name: "Free", rank: 0, entitlements: [], trialDays: 0, free: true });
    await server.runtime.app.subscriptions.setPlan(tenantId, { id: "pro", name: "Pro", rank: 1, entitlements: ["x"], trialDays: 7, free: false });
    await server.runtime.app.tenants.update(tenantId, (t) => ({ name: t.name, settings: { ...t.settings, trialPlan: "pro" } }));
    const people: string[] = [];
    for (let i = 0; i < 8; i++) {
      const email = uniqueEmail(`twice${i}`);
      await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
      await server.waitForMail(email);
      people.push(email);
    }
    offset = 8 * DAY;
    const runs = await Promise.all([
      server.runtime.subscriptionJob.run(now()),
      second.subscriptionJob.run(now()),
      server.runtime.subscriptionJob.run(now()),
      second.subscriptionJob.run(now()),
    ]);
    expect(runs.reduce((n, r) => n + r.expired, 0)).toBe(people.length);
    const ended = (email: string) => server.inbox.filter((m) => m.to === email && /trial has ended/.test(m.subject));
    await eventually(() => people.every((e) => ended(e).length >= 1), "every trial's mail");
    await new Promise((r) => setTimeout(r, 1500));
    for (const email of people) expect(ended(email)).toHaveLength(1);
    const events = await server.runtime.app.audit.list({ tenantId, action: "subscription.expired", pageSize: 100, pageToken: "" });
    expect(events.events).toHaveLength(people.length);
  });
});
