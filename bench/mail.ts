// An in-process SMTP server for the bench: the service mails verification
// links to it and the bench reads the tokens back (no real mail leaves).
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface Inbox {
  port: number;
  /** Resolves with the verification token mailed to `address`, waiting up to `timeoutMs`. */
  verificationToken(address: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
}

/** The plain-text body of a nodemailer message (multipart/alternative, QP or base64 parts). */
function plainText(raw: string): string {
  const split = (s: string) => {
    const at = s.indexOf("\r\n\r\n");
    const headers = new Map<string, string>();
    for (const line of s.slice(0, at).replace(/\r\n[ \t]+/g, " ").split("\r\n")) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    return { headers, body: s.slice(at + 4) };
  };
  const top = split(raw);
  const boundary = /boundary="?([^";]+)"?/.exec(top.headers.get("content-type") ?? "")?.[1];
  const parts = boundary ? top.body.split(`--${boundary}`).slice(1, -1).map((p) => split(p.replace(/^\r\n/, ""))) : [top];
  const part = parts.find((p) => (p.headers.get("content-type") ?? "text/plain").startsWith("text/plain"));
  if (!part) return "";
  const encoding = (part.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  if (encoding === "base64") return Buffer.from(part.body, "base64").toString("utf8");
  if (encoding === "quoted-printable") {
    const bytes = part.body.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/gi, (_m, h: string) => `%${h}`);
    return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, "%25"));
  }
  return part.body;
}

export function startInbox(): Promise<Inbox> {
  const tokens = new Map<string, string>();
  const waiting = new Map<string, (token: string) => void>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    closeTimeout: 100,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const token = /[?&]token=([A-Za-z0-9_-]+)/.exec(plainText(Buffer.concat(chunks).toString("utf8")))?.[1];
        for (const { address } of session.envelope.rcptTo) {
          if (token === undefined) continue;
          tokens.set(address, token);
          waiting.get(address)?.(token);
        }
        callback();
      });
    },
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: (server.server.address() as AddressInfo).port,
        verificationToken(address, timeoutMs) {
          const known = tokens.get(address);
          if (known !== undefined) return Promise.resolve(known);
          return new Promise((done, fail) => {
            const timer = setTimeout(() => {
              waiting.delete(address);
              fail(new Error(`no verification mail to ${address} within ${timeoutMs} ms`));
            }, timeoutMs);
            waiting.set(address, (token) => {
              clearTimeout(timer);
              waiting.delete(address);
              done(token);
            });
          });
        },
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
