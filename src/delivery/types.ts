// Delivery's own types: a rendered message, the mail transport and the SMS sender. What to
// send (kinds and payloads) is the domain's (src/domain/messages.ts).

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
}

export interface OutgoingMail extends RenderedMessage {
  to: string;
}

/** Sends one email; throws on failure (the outbox worker retries). */
export interface MailTransport {
  send(mail: OutgoingMail): Promise<void>;
  close(): Promise<void>;
}

export interface OutgoingSms {
  /** E.164. */
  to: string;
  body: string;
  /** The language the text is in ("en", "fr"). */
  locale: string;
  /** The outbox message's id: the same on every retry, so a provider or receiver can drop repeats. */
  messageId: string;
}

/** Sends one SMS; throws an SmsDeliveryError (src/delivery/sms-sender.ts) on failure (the outbox worker retries). */
export interface SmsSender {
  send(sms: OutgoingSms): Promise<void>;
  close(): Promise<void>;
}
