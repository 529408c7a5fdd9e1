// The one place domain errors become wire errors. Known errors keep their
// message and gain standard google.rpc details (ErrorInfo, BadRequest,
// RetryInfo); anything else becomes Internal with a generic message, and the
// cause is logged, never sent.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DomainError, type ErrorKind } from "../domain/errors.ts";
import { procedureName } from "./metrics.ts";

const CODES: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
};

export const ERROR_DOMAIN = "identity.v1";

export function toConnectError(error: unknown, onUnexpected: (error: unknown) => void): ConnectError {
  if (error instanceof DomainError) {
    const details: ConstructorParameters<typeof ConnectError>[3] = [
      { desc: ErrorInfoSchema, value: { reason: error.reason, domain: ERROR_DOMAIN } },
    ];
    if (error.fieldViolations.length > 0) {
      details.push({ desc: BadRequestSchema, value: { fieldViolations: error.fieldViolations.map((v) => ({ field: v.field, description: v.description, reason: error.reason })) } });
    }
    const headers = new Headers();
    if (error.retryAfterMs !== undefined) {
      const ms = Math.max(0, Math.ceil(error.retryAfterMs));
      details.push({ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 } } });
      headers.set("retry-after", String(Math.ceil(ms / 1000)));
    }
    return new ConnectError(error.message, CODES[error.kind], headers, details);
  }
  if (error instanceof ConnectError) {
    // Errors raised by the framework itself (bad JSON, unknown method) are already well-formed.
    if (error.code !== Code.Internal && error.code !== Code.Unknown) return error;
  }
  onUnexpected(error);
  if (isBackendDown(error)) return backendUnavailable();
  return new ConnectError("internal error", Code.Internal);
}

/** How long a client should wait before retrying a call a backend outage failed. */
export const BACKEND_RETRY_MS = 1000;

function backendUnavailable(): ConnectError {
  const seconds = BACKEND_RETRY_MS / 1000;
  return new ConnectError("a backend is unavailable; retry later", Code.Unavailable, { "retry-after": String(Math.ceil(seconds)) }, [
    { desc: ErrorInfoSchema, value: { reason: "BACKEND_UNAVAILABLE", domain: ERROR_DOMAIN } },
    { desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(Math.floor(seconds)), nanos: 0 } } },
  ]);
}

function isBackendDown(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  const message = (error as { message?: string } | null)?.message ?? "";
  // Connection failures and the drivers' own time bounds (mysql2 connectTimeout and
  // query timeout, ioredis connectTimeout, commandTimeout and socketTimeout).
  return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "PROTOCOL_CONNECTION_LOST", "PROTOCOL_SEQUENCE_TIMEOUT", "EPIPE"].includes(code ?? "") ||
    /Connection is closed|max retries per request|Command timed out|Socket timeout|Stream isn't writeable/i.test(message);
}

/** The one log line of an unexpected error, wherever the call was answered (interceptor or fast path). */
export function logUnexpected(log: { error(fields: object, message: string): void }): (error: unknown, procedure: string) => void {
  return (error, procedure) => log.error({ err: error, procedure }, "unexpected error");
}

/** Maps every error a handler throws (unary and streaming) through toConnectError. */
export function errorInterceptor(onUnexpected: (error: unknown, procedure: string) => void): Interceptor {
  return (next) => async (req) => {
    const report = (error: unknown) => onUnexpected(error, procedureName(req.method));
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* res.message;
          } catch (error) {
            throw toConnectError(error, report);
          }
        })(),
      };
    } catch (error) {
      throw toConnectError(error, report);
    }
  };
}
