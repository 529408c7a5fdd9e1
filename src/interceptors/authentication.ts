// Authentication, once per call, before the handler: the bearer credential of
// the authorization header becomes the caller under callerKey — a session
// token ("<account id>.<secret>") or a service API key ("idk_<secret>"). What
// the caller may then do is decided per RPC by authorize()
// (src/services/authorize.ts), from the caller found here.
import type { DescMethod } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { isApiKeySecret, type ApiKeys } from "../domain/api-keys.ts";
import { permissionDenied, unauthenticated } from "../domain/errors.ts";
import type { SessionPrincipal } from "../domain/principal.ts";
import type { Sessions, ValidSession } from "../domain/sessions.ts";
import type { Access } from "../services/access.ts";
import { bearerToken, callerKey, type Caller } from "../services/call-context.ts";

export interface Authenticators {
  sessions: Pick<Sessions, "validate">;
  apiKeys: Pick<ApiKeys, "authenticate">;
}

export function sessionPrincipal({ tokenHash, session }: ValidSession): SessionPrincipal {
  return {
    kind: "session",
    tenantId: session.tenantId,
    accountId: session.accountId,
    role: session.role,
    sessionId: session.sessionId,
    tokenHash,
    assurance: session.assurance,
    authenticatedAt: session.createdAt,
  };
}

/**
 * The caller of an RPC needing `access`. No credential → unauthenticated
 * (SESSION_REQUIRED or AUTHENTICATION_REQUIRED); a malformed header →
 * unauthenticated (MALFORMED_AUTHORIZATION); a bad, expired or revoked one →
 * unauthenticated (SESSION_INVALID, API_KEY_INVALID); a good API key where a
 * person's session is needed → permission_denied (SESSION_REQUIRED).
 */
export async function authenticateCall(deps: Authenticators, headers: Headers, access: Exclude<Access, "anonymous">): Promise<Caller> {
  const token = bearerToken(headers);
  if (token === undefined) {
    throw access === "session"
      ? unauthenticated("SESSION_REQUIRED", "a session token is required (authorization: Bearer <token>)")
      : unauthenticated("AUTHENTICATION_REQUIRED", "this call needs authorization: Bearer <session token or API key>");
  }
  if (isApiKeySecret(token)) {
    const principal = await deps.apiKeys.authenticate(token); // a bad key is unauthenticated
    if (access === "session") throw permissionDenied("SESSION_REQUIRED", "this call acts for a person and needs their session token, not an API key");
    return { kind: "api_key", principal };
  }
  const valid = await deps.sessions.validate(token);
  return { kind: "session", principal: sessionPrincipal(valid), valid };
}

/** Authenticates every call whose RPC is not anonymous, and puts the caller under callerKey. */
export function authenticationInterceptor(deps: Authenticators, accessOf: (method: DescMethod) => Access): Interceptor {
  return (next) => async (req) => {
    const access = accessOf(req.method);
    if (access !== "anonymous") req.contextValues.set(callerKey, await authenticateCall(deps, req.header, access));
    return next(req);
  };
}
