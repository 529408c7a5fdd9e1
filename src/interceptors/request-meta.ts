// The request's metadata — the client address and user agent — read once from
// the HTTP request (connectNodeAdapter's contextValues, which sees the socket
// that an interceptor cannot) and put under requestMetaKey for the handlers.
import { createContextValues, type ContextValues } from "@connectrpc/connect";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { requestMetaKey } from "../services/call-context.ts";

/** The client address, trusting X-Forwarded-For only from the configured number of proxies. */
export function clientIp(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined, trustedProxies: number): string {
  const direct = (remoteAddress ?? "").replace(/^::ffff:/, "");
  if (trustedProxies <= 0 || !forwardedFor) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
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
