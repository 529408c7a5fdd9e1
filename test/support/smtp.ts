// A real SMTP server (smtp-server) in the test process, and enough MIME
// parsing to read what nodemailer sent.
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface Received {
  envelopeTo: string[];
  to: string;
  /** Decoded (RFC 2047 encoded words, as nodemailer writes non-ASCII subjects). */
  subject: string;
  text: string;
  /** The text/html part, decoded; empty when there is none. */
  html: string;
}

/** Decodes RFC 2047 encoded words (=?UTF-8?Q?…?= and =?UTF-8?B?…?=). */
function decodeWords(value: string): string {
  return value.replace(/\?=\s+=\?/g, "?==?").replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_m, encoding: string, text: string) =>
    encoding.toUpperCase() === "B"
      ? Buffer.from(text, "base64").toString("utf8")
      : Buffer.from(
          text.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (_h, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
          "latin1",
        ).toString("utf8"),
  );
}

/** Enough MIME for nodemailer's output: headers, multipart/alternative, QP/base64 parts. */
export function parseMail(raw: string): Omit<Received, "envelopeTo"> {
  const split = (s: string) => {
    const at = s.indexOf("\r\n\r\n");
    const headers = new Map<string, string>();
    for (const line of s
      .slice(0, at)
      .replace(/\r\n[ \t]+/g, " ")
      .split("\r\n")) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    return { headers, body: s.slice(at + 4) };
  };
  const decode = (part: { headers: Map<string, string>; body: string }) => {
    const encoding = (part.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
    if (encoding === "base64") return Buffer.from(part.body, "base64").toString("utf8");
    if (encoding === "quoted-printable") {
      const bytes = part.body.replace(/=\r\n/g, "").replace(/=([0-9A-F]{2})/gi, (_m, h: string) => `%${h}`);
      return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, "%25"));
    }
    return part.body;
  };
  const top = split(raw);
  const boundary = /boundary="?([^";]+)"?/.exec(top.headers.get("content-type") ?? "")?.[1];
  const parts = boundary
    ? top.body
        .split(`--${boundary}`)
        .slice(1, -1)
        .map((p) => split(p.replace(/^\r\n/, "")))
    : [top];
  const plain = parts.find((p) => (p.headers.get("content-type") ?? "text/plain").startsWith("text/plain"));
  const html = parts.find((p) => (p.headers.get("content-type") ?? "").startsWith("text/html"));
  return {
    to: top.headers.get("to") ?? "",
    subject: decodeWords(top.headers.get("subject") ?? ""),
    text: plain ? decode(plain) : "",
    html: html ? decode(html) : "",
  };
}

export interface Smtp {
  port: number;
  /** From now on, answer every RCPT TO with this reply code ("No such user <address>", as real servers say), or accept again (null). */
  refuse(code: number | null): void;
  /** How many RCPT TO commands the server was sent (accepted or not). */
  recipientsOffered(): number;
  close(): Promise<void>;
}

/**
 * A real SMTP server collecting into `inbox`; `rejectRecipients` answers 550 to
 * every RCPT TO (or the given reply code: 451 to defer, 550 to refuse).
 */
export function startSmtp(inbox: Received[], port = 0, rejectRecipients: boolean | number = false): Promise<Smtp> {
  let refusal: number | null = rejectRecipients === true ? 550 : rejectRecipients === false ? null : rejectRecipients;
  let offered = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    closeTimeout: 100,
    onRcptTo(address, _session, callback) {
      offered++;
      if (refusal === null) return callback();
      callback(Object.assign(new Error(`No such user ${address.address}`), { responseCode: refusal }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        inbox.push({ envelopeTo: session.envelope.rcptTo.map((r) => r.address), ...parseMail(Buffer.concat(chunks).toString("utf8")) });
        callback();
      });
    },
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      resolve({
        port: (server.server.address() as AddressInfo).port,
        refuse: (code) => {
          refusal = code;
        },
        recipientsOffered: () => offered,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

/** A port nobody listens on (taken from the OS, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
