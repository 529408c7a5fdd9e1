// Domain errors carry a kind mirroring a gRPC code and an UPPER_SNAKE reason a
// client can branch on. They are mapped to the wire in exactly one place
// (src/interceptors/errors.ts); the domain never imports Connect.

export type ErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable"
  | "unimplemented";

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

export class DomainError extends Error {
  readonly kind: ErrorKind;
  readonly reason: string;
  readonly fieldViolations: readonly FieldViolation[];
  /** For resource_exhausted: how long until a retry can succeed. */
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: ErrorKind,
    reason: string,
    message: string,
    extra: { fieldViolations?: readonly FieldViolation[]; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: extra.cause });
    this.name = "DomainError";
    this.kind = kind;
    this.reason = reason;
    this.fieldViolations = extra.fieldViolations ?? [];
    this.retryAfterMs = extra.retryAfterMs;
  }
}

export function invalidArgument(field: string, description: string, reason = "INVALID_ARGUMENT"): DomainError {
  return new DomainError("invalid_argument", reason, `${field} ${description}`, {
    fieldViolations: [{ field, description }],
  });
}

/** One invalid_argument error naming every offending field; returns when there are none. */
export function assertNoViolations(violations: readonly FieldViolation[]): void {
  if (violations.length === 0) return;
  throw new DomainError("invalid_argument", "INVALID_ARGUMENT", violations.map((v) => `${v.field}: ${v.description}`).join("; "), {
    fieldViolations: violations,
  });
}

export function unauthenticated(reason = "UNAUTHENTICATED", message = "authentication required"): DomainError {
  return new DomainError("unauthenticated", reason, message);
}

export function permissionDenied(reason = "PERMISSION_DENIED", message = "permission denied"): DomainError {
  return new DomainError("permission_denied", reason, message);
}

export function rateLimited(retryAfterMs: number): DomainError {
  return new DomainError("resource_exhausted", "RATE_LIMITED", "too many attempts; retry later", { retryAfterMs });
}

/** An SMS code asked for where the deployment sends none (SMS_PROVIDER=none): nothing is queued. */
export function smsDisabled(): DomainError {
  return new DomainError("failed_precondition", "SMS_DISABLED", "this service does not send SMS: phone codes are turned off");
}
