// The Node entry: gRPC (HTTP/2) or Connect (HTTP/2 or HTTP/1.1) through
// connect-node, and the revocation-aware session validator for services.
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { bearerInterceptor, type Credential, type IdentityClients, identityClients } from "./clients.ts";

export * from "./index.ts";
export {
  createSessionValidator,
  type SessionValidator,
  type SessionValidatorOptions,
  sessionInterceptor,
  type ValidatedSession,
  validatedSessionKey,
} from "./validator.ts";

export interface NodeClientOptions {
  /** "grpc" (default; HTTP/2) or "connect" (Connect protocol, binary). */
  protocol?: "grpc" | "connect";
  /** Connect only: "2" (default) or "1.1". gRPC always uses HTTP/2. */
  httpVersion?: "1.1" | "2";
  /** The API key ("idk_…") or a session token sent as a bearer credential. */
  credential?: Credential;
}

/** A client for each service at `baseUrl` (e.g. "http://identity:8080"), for a Node service. */
export function createNodeClients(baseUrl: string, options: NodeClientOptions = {}): IdentityClients {
  const interceptors = options.credential === undefined ? [] : [bearerInterceptor(options.credential)];
  const transport =
    options.protocol === "connect"
      ? createConnectTransport({ baseUrl, httpVersion: options.httpVersion ?? "2", useBinaryFormat: true, interceptors })
      : createGrpcTransport({ baseUrl, interceptors });
  return identityClients(transport);
}
