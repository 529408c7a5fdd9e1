// Authenticating a call from its authorization header: a session token
// ("<account id>.<secret>") or a service API key ("idk_<secret>"). What the
// caller may then do is decided by authorize() in ./authorize.ts.
import type { HandlerContext } from "@connectrpc/connect";
import { isApiKeySecret } from "../domain/api-keys.ts";
import { permissionDenied, unauthenticated } from "../domain/errors.ts";
import type { Principal, SessionPrincipal } from "../domain/principal.ts";
import type { ValidSession } from "../domain/sessions.ts";
import { bearerToken } from "../server/request-context.ts";
import type { App } from "./app.ts";

/** The caller's live session; unauthenticated without one. */
export async function requireSession(app: App, ctx: HandlerContext): Promise<ValidSession & { token: string; principal: SessionPrincipal }> {
  const token = bearerToken(ctx.requestHeader);
  if (token === undefined) throw unauthenticated("SESSION_REQUIRED", "a session token is required (authorization: Bearer <token>)");
  if (isApiKeySecret(token)) {
    await app.apiKeys.authenticate(token); // a bad key is unauthenticated; a good one is the wrong kind of caller
    throw permissionDenied("SESSION_REQUIRED", "this call acts for a person and needs their session token, not an API key");
  }
  const valid = await app.sessions.validate(token);
  return { ...valid, token, principal: sessionPrincipal(valid) };
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

/** The caller, or undefined for an anonymous call; unauthenticated for a bad credential. */
export async function authenticate(app: App, ctx: HandlerContext): Promise<Principal | undefined> {
  const token = bearerToken(ctx.requestHeader);
  if (token === undefined) return undefined;
  if (isApiKeySecret(token)) return app.apiKeys.authenticate(token);
  return sessionPrincipal(await app.sessions.validate(token));
}
