// An in-process SMTP server for the bench: the service mails verification
// links to it and the bench reads the tokens back (no real mail leaves). The
// server and MIME parsing are the tests' (test/support/smtp.ts).
import { startSmtp, type Received } from "../test/support/smtp.ts";

export interface Inbox {
  port: number;
  /** Resolves with the verification token mailed to `address`, waiting up to `timeoutMs`. */
  verificationToken(address: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

export async function startInbox(): Promise<Inbox> {
  const received: Received[] = [];
  const smtp = await startSmtp(received);
  const tokenFor = (address: string) =>
    received.map((m) => (m.envelopeTo.includes(address) ? /[?&]token=([A-Za-z0-9_-]+)/.exec(m.text)?.[1] : undefined)).find(Boolean);
  return {
    port: smtp.port,
    async verificationToken(address, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const token = tokenFor(address);
        if (token) return token;
        if (Date.now() > deadline) throw new Error(`no verification mail to ${address} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => smtp.close(),
  };
}
