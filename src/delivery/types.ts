// Delivery's own types: a rendered message and the mail transport. What to
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
