// The browser entry: Connect (JSON or binary) or gRPC-Web over fetch. Nothing
// here needs a Node built-in, so any bundler targets the browser with it.
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { bearerInterceptor, type Credential, type IdentityClients, identityClients } from "./clients.ts";

export * from "./index.ts";

export interface WebClientOptions {
  /** "connect" (default; JSON, readable in the browser's network tab) or "grpc-web". */
  protocol?: "connect" | "grpc-web";
  /** The session token (or, server-side only, an API key) sent as a bearer credential. */
  credential?: Credential;
  /** Binary protobuf instead of JSON (Connect only; gRPC-Web is always binary). */
  useBinaryFormat?: boolean;
  /** Sends cookies along (fetch credentials: "include") — for a service behind the same site. */
  fetchCredentials?: "include" | "same-origin" | "omit";
}

/** A client for each service at `baseUrl` (e.g. "https://id.example.com"), for a web app. */
export function createWebClients(baseUrl: string, options: WebClientOptions = {}): IdentityClients {
  const interceptors = options.credential === undefined ? [] : [bearerInterceptor(options.credential)];
  const fetchWith =
    options.fetchCredentials === undefined
      ? undefined
      : (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => globalThis.fetch(input, { ...init, credentials: options.fetchCredentials });
  const common = { baseUrl, interceptors, ...(fetchWith ? { fetch: fetchWith } : {}) };
  const transport =
    options.protocol === "grpc-web" ? createGrpcWebTransport(common) : createConnectTransport({ ...common, useBinaryFormat: options.useBinaryFormat ?? false });
  return identityClients(transport);
}
