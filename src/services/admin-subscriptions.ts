// AdminService: plans and subscriptions, proto ⇄ domain only (rules:
// src/domain/subscriptions.ts). SetSubscription is what a billing system's
// webhook handler calls with an API key holding subscriptions.write.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { PlanSchema, type Plan as PlanMessage } from "../../gen/identity/v1/common_pb.js";
import type { Need } from "../domain/authorization.ts";
import { invalidArgument } from "../domain/errors.ts";
import { PLAN_ID_SHAPE } from "../domain/subscriptions.ts";
import { Role, type Plan } from "../domain/types.ts";
import { timestampToEpochMs } from "./admin-audit.ts";
import { accountAction } from "./admin-users.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";
import { accountToProto } from "./convert.ts";

const SUBSCRIPTIONS_WRITE: Need = { permission: "subscriptions.write", minRole: Role.ADMIN };
/** Plans shape what every account of the tenant gets: its admins only, no API key. */
const PLANS_WRITE: Need = { permission: null, minRole: Role.ADMIN };

/** How the audit trail names the plan a request names; "" when no plan can have that id. */
const planTarget = (id: string) => (PLAN_ID_SHAPE.test(id) ? `plan:${id}` : "");

export type SubscriptionRpcs = "setSubscription" | "listPlans" | "setPlan" | "deletePlan";

function planToProto(plan: Plan): PlanMessage {
  return create(PlanSchema, {
    id: plan.id,
    name: plan.name,
    rank: plan.rank,
    entitlements: [...plan.entitlements],
    trialDays: plan.trialDays,
    free: plan.free,
  });
}

export function subscriptionHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, SubscriptionRpcs> {
  const onAccount = accountAction(app);
  return {
    async setSubscription(req, ctx) {
      const subscription = req.subscription;
      // A retry under a key already used changed nothing: its audit event says "replayed".
      const { account } = await onAccount(
        ctx,
        SUBSCRIPTIONS_WRITE,
        "user.set_subscription",
        req,
        async (target) => {
          // An empty subscription ({}) clears the plan; a missing one is a mistake.
          if (!subscription) throw invalidArgument("subscription", "is required (send an empty one to clear the plan)");
          return app.subscriptions.set({
            ...target,
            plan: subscription.plan,
            status: subscription.status,
            periodEnd: timestampToEpochMs("subscription.expire_time", subscription.expireTime) ?? null,
            renews: subscription.renews,
            idempotencyKey: req.idempotencyKey,
          });
        },
        (result) => (result.replayed ? "replayed" : "success"),
      );
      return { account: accountToProto(account) };
    },

    async listPlans(_req, ctx) {
      const { tenantId } = await authorize(app, ctx, SUBSCRIPTIONS_WRITE);
      return { plans: (await app.subscriptions.listPlans(tenantId)).map(planToProto) };
    },

    async setPlan(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, PLANS_WRITE);
      const input = req.plan;
      const plan = await audited(app, ctx, principal, { tenantId, action: "plan.set", target: planTarget(input?.id ?? ""), reason: req.reason }, () => {
        if (!input) throw invalidArgument("plan", "is required");
        return app.subscriptions.setPlan(tenantId, {
          id: input.id,
          name: input.name,
          rank: input.rank,
          entitlements: input.entitlements,
          trialDays: input.trialDays,
          free: input.free,
        });
      });
      return { plan: planToProto(plan) };
    },

    async deletePlan(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, PLANS_WRITE);
      await audited(app, ctx, principal, { tenantId, action: "plan.delete", target: planTarget(req.planId), reason: req.reason }, () =>
        app.subscriptions.deletePlan(tenantId, req.planId),
      );
      return {};
    },
  };
}
