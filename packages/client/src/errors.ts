// The service's errors as a client sees them: every error carries a
// google.rpc.ErrorInfo whose reason (in domain "identity.v1") a program can
// branch on. ERROR_REASONS lists them all (test/unit/client-error-reasons.test.ts
// keeps it complete against the server's source).
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/** The ErrorInfo domain of the service's errors. */
export const ERROR_DOMAIN = "identity.v1";

export const ERROR_REASONS = [
  "ACCOUNT_CHANGED",
  "ACCOUNT_DEACTIVATED",
  "ACCOUNT_EXISTS",
  "ACCOUNT_NOT_ACTIVE",
  "ACCOUNT_NOT_FOUND",
  "ACCOUNT_PENDING_ACTIVATION",
  "ACCOUNT_ROLE_TOO_HIGH",
  "ALREADY_EXISTS",
  "API_KEY_INVALID",
  "API_KEY_NOT_ALLOWED",
  "API_KEY_NOT_FOUND",
  "API_KEY_REQUIRED",
  "AUTHENTICATION_REQUIRED",
  "BACKEND_UNAVAILABLE",
  "CHALLENGE_INVALID",
  "CODE_INVALID",
  "CONCURRENT_UPDATE",
  "CURSOR_INVALID",
  "CURSOR_EXPIRED",
  "DELIVERY_NOT_FOUND",
  "EMAIL_CHANGE_CONFLICT",
  "EMAIL_TAKEN",
  "EMAIL_UNCHANGED",
  "ENROLLMENT_NOT_STARTED",
  "FIELD_NOT_UPDATABLE",
  "FREE_PLAN_REQUIRED",
  "GUEST_WHILE_SIGNED_IN",
  "HOOK_DENIED",
  "HOOK_NOT_FOUND",
  "HOOK_UNAVAILABLE",
  "IDENTITY_NOT_FOUND",
  "IDENTITY_TAKEN",
  "IDENTITY_UNVERIFIED",
  "INVALID_ARGUMENT",
  "INVALID_CREDENTIALS",
  "INVALID_PAGE_TOKEN",
  "INVALID_SECOND_FACTOR",
  "PASSKEY_ALREADY_REGISTERED",
  "LAST_IDENTITY",
  "LAST_SUPER_ADMIN",
  "MALFORMED_AUTHORIZATION",
  "MESSAGE_NOT_FOUND",
  "MESSAGE_PAYLOAD_GONE",
  "NO_EMAIL_IDENTITY",
  "NO_SIGN_IN_IDENTITY",
  "OTHER_TENANT",
  "PAGE_TOKEN_INVALID",
  "PASSWORD_CHANGE_REQUIRED",
  "PASSWORD_COMMON",
  "PASSWORD_REQUIRED",
  "PASSWORD_TOO_LONG",
  "PASSWORD_TOO_SHORT",
  "PERMISSION_DENIED",
  "PERMISSION_REQUIRED",
  "PHONE_INVALID",
  "PHONE_REQUIRED",
  "PROVIDER_UNAVAILABLE",
  "PLAN_IN_USE",
  "PLAN_NOT_FOUND",
  "PUSH_TOKEN_NOT_FOUND",
  "RATE_LIMITED",
  "REASON_REQUIRED",
  "RECENT_SIGN_IN_REQUIRED",
  "REVOCATIONS_UNAVAILABLE",
  "ROLE_REQUIRED",
  "ROLE_TOO_HIGH",
  "SECOND_FACTOR_NOT_ENROLLED",
  "SECOND_FACTOR_NOT_FOUND",
  "SESSION_INVALID",
  "SESSION_NOT_FOUND",
  "SESSION_REQUIRED",
  "SIGN_UP_CLOSED",
  "SMS_DISABLED",
  "SMS_SECOND_FACTOR_UNAVAILABLE",
  "SOCIAL_CODE_INVALID",
  "SOCIAL_IDENTITY_TAKEN",
  "SOCIAL_LINK_REQUIRED",
  "SOCIAL_PROVIDER_NOT_FOUND",
  "SOCIAL_STATE_INVALID",
  "SOCIAL_TOKEN_INVALID",
  "STEP_UP_REQUIRED",
  "TEMPLATE_NOT_FOUND",
  "TENANT_EXISTS",
  "TENANT_NOT_FOUND",
  "TOKEN_INVALID",
  "TOO_MANY_STREAMS",
  "TOTP_ALREADY_ENROLLED",
  "UNAUTHENTICATED",
  "WEBHOOK_LIMIT",
  "WEBHOOK_NOT_FOUND",
] as const;

/** Every ErrorInfo.reason the service sends. */
export type ErrorReason = (typeof ERROR_REASONS)[number];

const KNOWN = new Set<string>(ERROR_REASONS);

export function isErrorReason(value: string): value is ErrorReason {
  return KNOWN.has(value);
}

/**
 * The ErrorInfo.reason of an error the service answered with (any value thrown
 * by a client call), or undefined when it carries none of ours (a network
 * error, a cancelled call, or a reason newer than this package).
 */
export function errorReason(error: unknown): ErrorReason | undefined {
  if (!(error instanceof Error)) return undefined;
  for (const info of ConnectError.from(error).findDetails(ErrorInfoSchema)) {
    if (info.domain === ERROR_DOMAIN && isErrorReason(info.reason)) return info.reason;
  }
  return undefined;
}

/** The request fields an InvalidArgument error names (google.rpc.BadRequest), empty otherwise. */
export function fieldViolations(error: unknown): Array<{ field: string; description: string }> {
  if (!(error instanceof Error)) return [];
  return ConnectError.from(error)
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
}

/** How long to wait before retrying (google.rpc.RetryInfo of ResourceExhausted / Unavailable), in ms; undefined when not said. */
export function retryDelayMs(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const delay = ConnectError.from(error).findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay === undefined ? undefined : Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6);
}

export { Code, ConnectError };
