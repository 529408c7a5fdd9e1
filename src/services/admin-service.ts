// identity.v1.AdminService: registered with no methods yet, so every RPC
// answers Unimplemented (listed in the README) until the administration issue.
import type { ConnectRouter } from "@connectrpc/connect";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";

export function registerAdminService(router: ConnectRouter): void {
  router.service(AdminService, {});
}
