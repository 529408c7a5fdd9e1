// The one place domain errors become wire errors. Known errors keep their
// message and gain standard google.rpc details (ErrorInfo, BadRequest,
// RetryInfo); anything else becomes Internal with a generic message, and the
// cause is logged, never sent.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DomainError, type ErrorKind } from "../domain/errors.ts";
import { BACKEND_RETRY_MS } from "../domain/ports/errors.ts";
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
    // A backend outage (translated by its adapter, src/store/*/errors.ts) is answered
    // as Unavailable and still logged, with the driver's error, for the operator.
    if (error.kind === "unavailable" && error.cause !== undefined) onUnexpected(error.cause);
    const details: ConstructorParameters<typeof ConnectError>[3] = [{ desc: ErrorInfoSchema, value: { reason: error.reason, domain: ERROR_DOMAIN } }];
    if (error.fieldViolations.length > 0) {
      details.push({
        desc: BadRequestSchema,
        value: { fieldViolations: error.fieldViolations.map((v) => ({ field: v.field, description: v.description, reason: error.reason })) },
      });
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
  // Driver errors never get here as such: the store adapters translate them.
  onUnexpected(error);
  if (isCancellation(error)) return new ConnectError("cancelled by the client", Code.Canceled);
  return new ConnectError("internal error", Code.Internal);
}

export { BACKEND_RETRY_MS };

/**
 * A client that went away mid-call (a reflection stream closed by buf curl, a
 * reset stream, a closed connection): routine, and anyone can cause it.
 */
function isCancellation(error: unknown): boolean {
  const e = error as { code?: unknown; name?: string } | null;
  return e?.code === "ERR_STREAM_PREMATURE_CLOSE" || e?.name === "AbortError" || (error instanceof ConnectError && error.code === Code.Canceled);
}

/** The one log line of an unexpected error, wherever the call was answered (interceptor or fast path); a client's cancellation is only debug. */
export function logUnexpected(log: {
  error(fields: object, message: string): void;
  debug?(fields: object, message: string): void;
}): (error: unknown, procedure: string) => void {
  return (error, procedure) => {
    if (isCancellation(error)) log.debug?.({ procedure }, "call cancelled by the client");
    else log.error({ err: error, procedure }, "unexpected error");
  };
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
