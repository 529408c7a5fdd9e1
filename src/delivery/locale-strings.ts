// The shape of a locale's built-in messages (./templates.ts, ./locales/).
import type { EmailMessageKind, SmsMessageKind } from "../domain/messages.ts";

export interface Template {
  subject: string;
  /** Paragraphs; a paragraph whose placeholder has no value is left out. */
  paragraphs: string[];
  /** Variables the message is useless without; "a|b" means either. */
  required: string[];
}

export type Table = Record<EmailMessageKind, Template>;

export interface SmsTemplate {
  /** One short text; only GSM-7 characters so one SMS holds 160 of them. */
  text: string;
  required: string[];
}

export type SmsTable = Record<SmsMessageKind, SmsTemplate>;

/** [unit in minutes, singular, plural]; days only from 2 days, so a day reads "24 hours". */
export type Units = Array<[size: number, one: string, many: string]>;

/** Everything one locale says: each email kind, each SMS kind, the duration units. */
export interface LocaleStrings {
  email: Table;
  sms: SmsTable;
  units: Units;
}
