// What the domain asks to have sent: a message kind, a recipient and the
// variables its template needs. Sealed in the outbox until the delivery worker
// (src/delivery/) renders and sends it; delivery depends on these, never the reverse.
import type { Locale } from "./types.ts";

export const MessageKind = {
  VERIFY_EMAIL: "verify_email",
  SIGNUP_EXISTING: "signup_existing",
  PASSWORD_RESET: "password_reset",
  EMAIL_CHANGE_CODE: "email_change_code",
  EMAIL_CHANGE_REQUESTED: "email_change_requested",
  EMAIL_CHANGED_NOTICE: "email_changed_notice",
  PASSWORD_CHANGED_NOTICE: "password_changed_notice",
  INVITATION: "invitation",
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

export interface MessagePayload {
  kind: MessageKind;
  to: string;
  locale: Locale;
  /** Template variables, e.g. { link, code, tenantName }. */
  variables: Record<string, string>;
}
