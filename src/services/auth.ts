// Authenticating a call: the bearer token of the authorization header.
import type { HandlerContext } from "@connectrpc/connect";
import { unauthenticated } from "../domain/errors.ts";
import type { ValidSession } from "../domain/sessions.ts";
import { bearerToken } from "../server/request-context.ts";
import type { App } from "./app.ts";

/** The caller's live session; unauthenticated without one. */
export async function requireSession(app: App, ctx: HandlerContext): Promise<ValidSession & { token: string }> {
  const token = bearerToken(ctx.requestHeader);
  if (token === undefined) throw unauthenticated("SESSION_REQUIRED", "a session token is required (authorization: Bearer <token>)");
  return { ...(await app.sessions.validate(token)), token };
}
