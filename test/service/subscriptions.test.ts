// Subscription rules on the real services (fast tier): a trial the tenant starts
// at verification, the free plan answered for an account without a
// subscription, the one-free-plan rule, and SetSubscription's refusals naming
// the field. The dated behaviour (the job, the mails, two instances) is in
// test/integration/subscriptions.test.ts.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { SubscriptionStatus as Status } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { linkToken } from "../support/server.ts";
import { createServiceHarness, type ServiceHarness } from "./harness.ts";
import { expectRefused, PASSWORD, superAdmin, uniqueEmail } from "./support.ts";

const DAY = 86_400_000;

describe("subscriptions", () => {
  let h: ServiceHarness;
  let root: string;
  beforeAll(async () => {
    h = await createServiceHarness();
    root = (await superAdmin(h)).token;
  });
  afterAll(() => h?.close());

  const admin = () => h.client(AdminService, root);

  it("answers the tenant's free plan for an account without a subscription, and keeps one free plan", async () => {
    await admin().setPlan({ plan: { id: "free", name: "Free", entitlements: ["read"] }, reason: "setup" });
    await admin().setPlan({ plan: { id: "pro", name: "Pro", rank: 2, entitlements: ["read", "write"], trialDays: 7 }, reason: "setup" });
    const { plans } = await admin().listPlans({});
    expect(plans.map((p) => [p.id, p.free])).toEqual([
      ["free", true],
      ["pro", false],
    ]);
    const answer = await h.client(SessionService).validateSession({ sessionToken: root });
    expect([answer.planId, answer.subscriptionStatus, answer.entitlements]).toEqual(["free", Status.UNSPECIFIED, ["read"]]);
    await expectRefused(admin().setPlan({ plan: { id: "free", name: "Free" }, reason: "r" }), Code.FailedPrecondition, "FREE_PLAN_REQUIRED");
    // Marking another plan free moves the mark.
    await admin().setPlan({ plan: { id: "basic", name: "Basic", rank: 1, entitlements: ["read"], free: true }, reason: "r" });
    expect((await admin().listPlans({})).plans.filter((p) => p.free).map((p) => p.id)).toEqual(["basic"]);
    await admin().setPlan({ plan: { id: "free", name: "Free", entitlements: ["read"], free: true }, reason: "r" });
    await admin().deletePlan({ planId: "basic", reason: "r" });
  });

  it("starts the tenant's trial at verification when it says so, not at sign-up", async () => {
    await admin().updateTenant({
      tenant: { id: "default", settings: { trialPlan: "pro", trialStart: "verification" } },
      updateMask: { paths: ["settings.trial_plan", "settings.trial_start"] },
    });
    const email = uniqueEmail("trial-at-verification");
    await h.client(IdentityService).signUp({ email, password: PASSWORD });
    const [pending] = (await admin().listUsers({ email, reason: "test" })).users;
    expect(pending?.subscription).toMatchObject({ plan: "", status: Status.UNSPECIFIED });
    const before = Date.now();
    const verified = await h.client(IdentityService).verifyIdentity({ token: linkToken((await h.lastMailTo(email)).text) });
    const answer = await h.client(SessionService).validateSession({ sessionToken: verified.sessionToken });
    expect([answer.planId, answer.subscriptionStatus, answer.entitlements]).toEqual(["pro", Status.TRIALING, ["read", "write"]]);
    const [trialing] = (await admin().listUsers({ email, reason: "test" })).users;
    const end = Number(trialing!.subscription!.expireTime!.seconds) * 1000;
    expect(end).toBeGreaterThanOrEqual(before + 7 * DAY - 1000);
    expect(end).toBeLessThanOrEqual(Date.now() + 7 * DAY);
  });

  it("refuses bad subscriptions naming the field", async () => {
    const email = uniqueEmail("bad-subscription");
    const accountId = (await admin().createUser({ email, password: PASSWORD })).account!.id;
    const set = (subscription: Record<string, unknown>, idempotencyKey = "") => admin().setSubscription({ accountId, subscription, idempotencyKey });
    const field = async (call: Promise<unknown>) => (await expectRefused(call, Code.InvalidArgument)).rawMessage;
    expect(await field(set({ plan: "gold" }))).toContain("subscription.plan");
    expect(await field(set({ plan: "pro", status: Status.TRIALING }))).toContain("subscription.expire_time");
    expect(await field(set({ plan: "pro", status: 99 }))).toContain("subscription.status");
    expect(await field(set({ plan: "pro" }, "k".repeat(201)))).toContain("idempotency_key");
    expect(await field(set({ status: Status.ACTIVE }))).toContain("subscription.status");
    const cleared = await set({});
    expect(cleared.account?.subscription).toMatchObject({ plan: "", status: Status.UNSPECIFIED });
  });
});
