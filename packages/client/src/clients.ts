// One client per service over any transport, and the bearer credential every
// call carries. The Node and browser entries (node.ts, web.ts) build the
// transport; this part is the same for both.
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { AccountService } from "../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../gen/identity/v1/session_service_pb.js";

/**
 * What every call sends as `authorization: Bearer <credential>`: an end user's
 * session token or a service's API key ("idk_…"). A function is asked before
 * each call (a token that changes after sign-in); undefined sends none.
 */
export type Credential = string | (() => string | undefined | Promise<string | undefined>);

export interface IdentityClients {
  identity: Client<typeof IdentityService>;
  sessions: Client<typeof SessionService>;
  accounts: Client<typeof AccountService>;
  admin: Client<typeof AdminService>;
  /** The transport the clients share (to create further clients, or a SessionValidator). */
  transport: Transport;
}

/** Sets the authorization header from `credential` unless the call sets one itself. */
export function bearerInterceptor(credential: Credential): Interceptor {
  return (next) => async (req) => {
    if (!req.header.has("authorization")) {
      const value = typeof credential === "string" ? credential : await credential();
      if (value !== undefined && value !== "") req.header.set("authorization", `Bearer ${value}`);
    }
    return next(req);
  };
}

/** A client for each service, all over `transport`. */
export function identityClients(transport: Transport): IdentityClients {
  return {
    identity: createClient(IdentityService, transport),
    sessions: createClient(SessionService, transport),
    accounts: createClient(AccountService, transport),
    admin: createClient(AdminService, transport),
    transport,
  };
}
