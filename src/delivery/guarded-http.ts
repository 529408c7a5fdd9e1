// One POST to a webhook or blocking hook, guarded against SSRF: unless private
// networks are allowed (development mode, WEBHOOK_ALLOW_PRIVATE_NETWORKS), the
// host's name is resolved at the call and the call refused (code
// PRIVATE_ADDRESS) when ANY of its addresses is loopback, private, link-local
// (cloud metadata 169.254.169.254) or otherwise not public. The connection goes
// to the very addresses that were checked (the check is the socket's own
// lookup), so a name that resolves differently the second time (DNS rebinding)
// cannot slip past. No redirects are followed; the answer's body is read up to a bound.
import { type LookupAddress, lookup as systemLookup } from "node:dns";
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { isIpLiteral, isPublicAddress } from "../domain/network-address.ts";

/** Resolves a name to all its addresses (node:dns lookup with `all`); injectable for tests. */
export type Resolver = (hostname: string, family: number) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname, family) =>
  new Promise((resolve, reject) => systemLookup(hostname, { all: true, family }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

export type GuardedPost = (input: {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  bodyMax?: number;
}) => Promise<{ status: number; body: string }>;

function privateAddressError(): Error {
  return Object.assign(new Error("the endpoint resolves to a loopback, private or link-local address"), { code: "PRIVATE_ADDRESS" });
}

export function createGuardedPost(options: { allowPrivateNetworks: boolean; resolver?: Resolver }): GuardedPost {
  const resolver = options.resolver ?? systemResolver;
  const lookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolver(hostname, typeof lookupOptions.family === "number" ? lookupOptions.family : 0).then(
      (addresses) => {
        if (addresses.length === 0) return callback(Object.assign(new Error("no address"), { code: "ENOTFOUND" }), "", 4);
        if (!options.allowPrivateNetworks && addresses.some((a) => !isPublicAddress(a.address))) return callback(privateAddressError(), "", 4);
        if (lookupOptions.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: Error) => callback(error as NodeJS.ErrnoException, "", 4),
    );
  };

  return ({ url, headers, body, timeoutMs, bodyMax = 16 * 1024 }) =>
    new Promise((resolve, reject) => {
      const parsed = new URL(url);
      const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
      // A literal address is never looked up: check it here.
      if (!options.allowPrivateNetworks && isIpLiteral(host) && !isPublicAddress(host)) return reject(privateAddressError());
      const requestOptions: RequestOptions = {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers },
        lookup,
        signal: AbortSignal.timeout(timeoutMs),
      };
      const request = (parsed.protocol === "https:" ? httpsRequest : httpRequest)(parsed, requestOptions, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          if (size < bodyMax) chunks.push(chunk);
          size += chunk.length;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8").slice(0, bodyMax) }));
        response.on("error", reject);
      });
      request.on("error", reject);
      request.end(body);
    });
}
