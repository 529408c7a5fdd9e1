// What the domain asks to have sent: a message kind, a recipient and the
// variables its template needs. Sealed in the outbox until the delivery worker
// (src/delivery/) renders and sends it; delivery depends on these, never the reverse.
import type { Locale } from "./types.ts";

export const MessageKind = {
  VERIFY_EMAIL: "verify_email",
  SIGNUP_EXISTING: "signup_existing",
  /** To the owner's email address: someone signed in tried to add a phone number the owner already holds. */
  PHONE_EXISTING: "phone_existing",
  PASSWORD_RESET: "password_reset",
  EMAIL_CHANGE_CODE: "email_change_code",
  EMAIL_CHANGE_REQUESTED: "email_change_requested",
  EMAIL_CHANGED_NOTICE: "email_changed_notice",
  PASSWORD_CHANGED_NOTICE: "password_changed_notice",
  INVITATION: "invitation",
  /** SMS: `to` is the E.164 number; variables { code, minutes } (minutes = the code's lifetime). */
  PHONE_CODE: "phone_code",
  TRIAL_ENDED: "trial_ended",
  SUBSCRIPTION_EXPIRED: "subscription_expired",
  RENEWAL_REMINDER: "renewal_reminder",
  /** Notices of the account's second factors: one added, one (or all, by customer service) removed, a recovery code used to sign in. */
  SECOND_FACTOR_ADDED: "second_factor_added",
  SECOND_FACTOR_REMOVED: "second_factor_removed",
  RECOVERY_CODE_USED: "recovery_code_used",
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

/** How a message reaches its recipient: `to` is an email address or an E.164 phone number. */
export type MessageChannel = "email" | "sms";

const SMS_KINDS = [MessageKind.PHONE_CODE] as const;
export type SmsMessageKind = (typeof SMS_KINDS)[number];
export type EmailMessageKind = Exclude<MessageKind, SmsMessageKind>;

/** The channel a kind is delivered on (the outbox worker dispatches on it). */
export function messageChannel(kind: MessageKind): MessageChannel {
  return (SMS_KINDS as readonly MessageKind[]).includes(kind) ? "sms" : "email";
}

export interface MessagePayload {
  kind: MessageKind;
  to: string;
  locale: Locale;
  /** Template variables, e.g. { link, code, tenantName }. */
  variables: Record<string, string>;
}
