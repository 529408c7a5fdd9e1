// @identity-service/client: the service's contract (messages, enums and service
// descriptors generated from proto/identity/v1 by `buf generate`) and its error
// reasons, with no transport. Clients: "@identity-service/client/node" (gRPC and
// Connect over HTTP/2, and the session validator) or "@identity-service/client/web"
// (Connect and gRPC-Web over fetch).
export * from "../gen/identity/v1/account_service_pb.js";
export * from "../gen/identity/v1/admin_service_pb.js";
export * from "../gen/identity/v1/common_pb.js";
export * from "../gen/identity/v1/identity_service_pb.js";
export * from "../gen/identity/v1/session_service_pb.js";
export { bearerInterceptor, type Credential, identityClients, type IdentityClients } from "./clients.ts";
export { Code, ConnectError, ERROR_DOMAIN, ERROR_REASONS, type ErrorReason, errorReason, fieldViolations, isErrorReason, retryDelayMs } from "./errors.ts";
