// identity.v1.AdminService: translate proto ⇄ domain, nothing else. Each area's
// handlers live in their own module and are composed here; RPCs no module
// implements yet answer Unimplemented (listed in the README).
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { auditHandlers } from "./admin-audit.ts";
import { privacyHandlers } from "./admin-privacy.ts";
import { tenantHandlers } from "./admin-tenants.ts";
import type { App } from "./app.ts";
import { userHandlers } from "./admin-users.ts";

export type AdminHandlers = Partial<ServiceImpl<typeof AdminService>>;

export function registerAdminService(router: ConnectRouter, app: App): void {
  router.service(AdminService, {
    ...tenantHandlers(app),
    ...auditHandlers(app),
    ...privacyHandlers(app),
    ...userHandlers(app),
  });
}
