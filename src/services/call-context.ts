// What a handler knows about its call, under typed context keys: the request's
// metadata and the authenticated caller. The interceptors in src/interceptors/
// put them there (connect-es's createContextKey pattern); handlers only read
// them, so no handler authenticates or parses transport details itself.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { invalidArgument, unauthenticated } from "../domain/errors.ts";
import type { ApiKeyPrincipal, Principal, SessionPrincipal } from "../domain/principal.ts";
import type { RequestMeta, ValidSession } from "../domain/sessions.ts";
import { DEFAULT_TENANT_ID } from "../domain/tenants.ts";

/** Who is calling, as the authentication interceptor found it. */
export type Caller =
  | { kind: "anonymous" }
  | { kind: "api_key"; principal: ApiKeyPrincipal }
  | { kind: "session"; principal: SessionPrincipal; valid: ValidSession };

export const requestMetaKey = createContextKey<RequestMeta>({ ip: "", userAgent: "" }, { description: "caller ip and user agent" });
export const callerKey = createContextKey<Caller>({ kind: "anonymous" }, { description: "the authenticated caller" });

export function requestMeta(ctx: HandlerContext): RequestMeta {
  return ctx.values.get(requestMetaKey);
}

/**
 * The authenticated caller of an RPC whose access is "principal" or "session".
 * The interceptor refuses such calls without a credential, so an anonymous
 * caller here means the RPC's access was declared "anonymous": refused all the same.
 */
export function requirePrincipal(ctx: HandlerContext): Principal {
  const caller = ctx.values.get(callerKey);
  if (caller.kind === "anonymous") throw unauthenticated("AUTHENTICATION_REQUIRED", "this call needs authorization: Bearer <session token or API key>");
  return caller.principal;
}

/** The caller's live session, for an RPC whose access is "session". */
export function requireSession(ctx: HandlerContext): ValidSession & { principal: SessionPrincipal } {
  const caller = ctx.values.get(callerKey);
  if (caller.kind !== "session") throw unauthenticated("SESSION_REQUIRED", "a session token is required (authorization: Bearer <token>)");
  return { ...caller.valid, principal: caller.principal };
}

/** The tenant an anonymous call addresses: the x-tenant-id header, or the default tenant. */
export function tenantOf(ctx: HandlerContext): string {
  const header = ctx.requestHeader.get("x-tenant-id");
  if (header === null || header === "") return DEFAULT_TENANT_ID;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(header)) throw invalidArgument("x-tenant-id", "is not a valid tenant id");
  return header;
}

/** The bearer token of the authorization header, or undefined. */
export function bearerToken(headers: Headers): string | undefined {
  return bearerOf(headers.get("authorization"));
}

/** The bearer token of an authorization header's value (undefined when absent); unauthenticated when malformed. */
export function bearerOf(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  if (!match) throw unauthenticated("MALFORMED_AUTHORIZATION", "authorization must be 'Bearer <token>'");
  return match[1];
}
