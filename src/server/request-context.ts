// Per-call values: who is calling from where, and in which tenant. Filled
// from the HTTP request once (connectNodeAdapter's contextValues) and read by
// services through typed context keys.
import { createContextKey, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { RequestMeta } from "../domain/sessions.ts";
import { DEFAULT_TENANT_ID } from "../domain/tenants.ts";
import { invalidArgument, unauthenticated } from "../domain/errors.ts";

export const requestMetaKey = createContextKey<RequestMeta>({ ip: "", userAgent: "" }, { description: "caller ip and user agent" });

/** The client address, trusting X-Forwarded-For only from the configured number of proxies. */
export function clientIp(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: number): string {
  const direct = (remoteAddress ?? "").replace(/^::ffff:/, "");
  if (trustedProxies <= 0 || !forwardedFor) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",").map((h) => h.trim()).filter(Boolean);
  return hops[hops.length - trustedProxies] ?? hops[0] ?? direct;
}

export function contextValuesFor(trustedProxies: number) {
  return (req: IncomingMessage | Http2ServerRequest): ContextValues => {
    const values = createContextValues();
    const userAgent = req.headers["user-agent"];
    values.set(requestMetaKey, {
      ip: clientIp(req.socket?.remoteAddress, req.headers["x-forwarded-for"], trustedProxies),
      userAgent: typeof userAgent === "string" ? userAgent.slice(0, 200) : "",
    });
    return values;
  };
}

export function requestMeta(ctx: HandlerContext): RequestMeta {
  return ctx.values.get(requestMetaKey);
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
