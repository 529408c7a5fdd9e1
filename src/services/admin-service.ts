// identity.v1.AdminService: translate proto ⇄ domain, nothing else. Each
// area's handlers live in their own module (tenants and API keys, users,
// privacy, audit, failed messages); composed here into one implementation, complete by type.
// Every RPC needs a session or an API key; authorize() then applies the RPC's rule.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import type { AccessPolicy } from "./access.ts";
import { auditHandlers } from "./admin-audit.ts";
import { outboxHandlers } from "./admin-outbox.ts";
import { privacyHandlers } from "./admin-privacy.ts";
import { socialProviderHandlers } from "./admin-social.ts";
import { tenantHandlers } from "./admin-tenants.ts";
import { recoveryHandlers } from "./admin-recovery.ts";
import { subscriptionHandlers } from "./admin-subscriptions.ts";
import { hookHandlers } from "./admin-hooks.ts";
import { templateHandlers } from "./admin-templates.ts";
import { userHandlers } from "./admin-users.ts";
import { webhookHandlers } from "./admin-webhooks.ts";
import type { App } from "./app.ts";

export const adminAccess: AccessPolicy<typeof AdminService> = "principal";

export function adminService(app: App): ServiceImpl<typeof AdminService> {
  return {
    ...tenantHandlers(app),
    ...auditHandlers(app),
    ...privacyHandlers(app),
    ...userHandlers(app),
    ...subscriptionHandlers(app),
    ...recoveryHandlers(app),
    ...outboxHandlers(app),
    ...socialProviderHandlers(app),
    ...webhookHandlers(app),
    ...hookHandlers(app),
    ...templateHandlers(app),
  } satisfies ServiceImpl<typeof AdminService>;
}
