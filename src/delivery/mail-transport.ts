// Mail transports: SMTP through nodemailer, or a log line for development.
import { createTransport } from "nodemailer";
import type { MailTransport } from "./types.ts";

/**
 * Sends through the SMTP server at `smtpUrl` (smtp://user:pass@host:587 or
 * smtps://…), keeping a small pool of connections open between messages.
 */
export function createSmtpTransport(smtpUrl: string, from: string): MailTransport {
  const transporter = createTransport({
    url: smtpUrl,
    pool: true,
    maxConnections: 3,
    // Fail well inside the outbox lease (60 s by default): a send still
    // hanging when the lease ends could be sent again by another worker.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(mail) {
      await transporter.sendMail({ from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    },
    async close() {
      transporter.close();
    },
  };
}

/**
 * DEVELOPMENT ONLY: "sends" by logging the recipient, subject and text (with its
 * links and codes) so a developer can follow them without an SMTP server. Never
 * use it in production: the log would hold personal data and secrets.
 */
export function createLogTransport(log: (line: string, fields: Record<string, unknown>) => void): MailTransport {
  return {
    async send(mail) {
      log("email (development transport, not sent)", { to: mail.to, subject: mail.subject, text: mail.text });
    },
    async close() {},
  };
}
