// The identity.v1 services as served: each one complete implementation with its
// access policy. src/server/http.ts registers them and hands accessOf to the
// authentication interceptor.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import type { Access, AccessPolicy } from "./access.ts";
import { accountAccess, accountService } from "./account-service.ts";
import { adminAccess, adminService } from "./admin-service.ts";
import type { App } from "./app.ts";
import { identityAccess, identityService } from "./identity-service.ts";
import { sessionAccess, sessionService } from "./session-service.ts";

export function registerIdentityServices(router: ConnectRouter, app: App): void {
  router.service(IdentityService, identityService(app));
  router.service(SessionService, sessionService(app));
  router.service(AccountService, accountService(app));
  router.service(AdminService, adminService(app));
}

const POLICIES = new Map<DescService, AccessPolicy<DescService>>([
  [IdentityService, identityAccess],
  [SessionService, sessionAccess],
  [AccountService, accountAccess],
  [AdminService, adminAccess],
]);

/** What an RPC needs before its handler runs; services not listed (health, reflection) are anonymous. */
export function accessOf(method: DescMethod): Access {
  const policy = POLICIES.get(method.parent);
  if (policy === undefined) return "anonymous";
  if (typeof policy === "string") return policy;
  // A method missing from a policy cannot happen (complete by type); refuse rather than serve it anonymously.
  return (policy as Record<string, Access>)[method.localName] ?? "principal";
}
