// A local HTTP server (node:http) playing an SMS provider: the generic signed
// webhook (it verifies X-Signature as docs/delivery.md tells a receiver to) or
// Twilio's Messages API (path, Basic auth, form fields). Tests choose each
// answer; every request is recorded, and every message the "phone" received.
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ProviderRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
}

/** What the provider answers a request: a status and a body (JSON when an object); "hang" never answers. */
export type ProviderAnswer = { status: number; body?: unknown; delayMs?: number; headers?: Record<string, string> } | "hang";

export interface ReceivedSms {
  to: string;
  body: string;
  locale?: string;
  messageId?: string;
  from?: string;
  messagingServiceSid?: string;
}

export interface SmsProvider {
  url: string;
  port: number;
  /** Every request, in order (also refused ones). */
  requests: ProviderRequest[];
  /** Every SMS accepted (answered 2xx), in order. */
  delivered: ReceivedSms[];
  /** Answers the next requests with these, in order, before the default. */
  answerNext(...answers: ProviderAnswer[]): void;
  /** Stops listening (the provider is down); start() listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

interface Options {
  kind: "webhook" | "twilio";
  /** Webhook: the shared secret the signature is checked with (a bad signature is answered 401). */
  secret?: string;
  /** Twilio: the account SID and auth token Basic auth is checked against (else 401, code 20003). */
  accountSid?: string;
  authToken?: string;
  /** Webhook: accept a message_id seen before without delivering it again (the receiver's recipe). */
  dedupe?: boolean;
  port?: number;
}

function verifySignature(secret: string, raw: Buffer, header: string | undefined): boolean {
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(raw).digest("hex")}`);
  const given = Buffer.from(header ?? "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startSmsProvider(options: Options): Promise<SmsProvider> {
  const requests: ProviderRequest[] = [];
  const delivered: ReceivedSms[] = [];
  const queued: ProviderAnswer[] = [];
  const seen = new Set<string>();
  const sockets = new Set<import("node:net").Socket>();
  let port = options.port ?? 0;
  let server: http.Server | undefined;

  const handle = (request: http.IncomingMessage, response: http.ServerResponse, raw: Buffer) => {
    const text = raw.toString("utf8");
    requests.push({ method: request.method ?? "", path: request.url ?? "", headers: request.headers, raw: text });
    const answer = queued.shift() ?? { status: options.kind === "twilio" ? 201 : 200 };
    if (answer === "hang") return;
    const reply = (status: number, body: unknown) => {
      const payload = typeof body === "string" ? body : JSON.stringify(body ?? {});
      response.writeHead(status, { "content-type": "application/json", ...answer.headers }).end(payload);
    };
    const respond = () => {
      let sms: ReceivedSms;
      if (options.kind === "webhook") {
        if (request.headers["content-type"] !== "application/json" || !verifySignature(options.secret ?? "", raw, request.headers["x-signature"] as string)) {
          reply(401, { error: "bad signature" });
          return;
        }
        const body = JSON.parse(text) as { to: string; body: string; locale: string; message_id: string };
        sms = { to: body.to, body: body.body, locale: body.locale, messageId: body.message_id };
        if (answer.status < 300 && options.dedupe && seen.has(body.message_id)) {
          reply(200, { duplicate: true });
          return;
        }
      } else {
        const expectedPath = `/2010-04-01/Accounts/${options.accountSid}/Messages.json`;
        const expectedAuth = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString("base64")}`;
        if (request.url !== expectedPath || request.headers.authorization !== expectedAuth) {
          reply(401, { code: 20003, message: "Authenticate", status: 401 });
          return;
        }
        const form = new URLSearchParams(text);
        sms = {
          to: form.get("To") ?? "",
          body: form.get("Body") ?? "",
          ...(form.get("From") ? { from: form.get("From")! } : {}),
          ...(form.get("MessagingServiceSid") ? { messagingServiceSid: form.get("MessagingServiceSid")! } : {}),
        };
      }
      if (answer.status < 300) {
        delivered.push(sms);
        if (sms.messageId) seen.add(sms.messageId);
      }
      reply(answer.status, answer.body ?? (options.kind === "twilio" ? { sid: `SM${delivered.length}`, status: "queued" } : {}));
    };
    if (answer.delayMs) setTimeout(respond, answer.delayMs);
    else respond();
  };

  const start = async () => {
    server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => handle(request, response, Buffer.concat(chunks)));
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server!.listen(port, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  };
  const stop = async () => {
    if (!server) return;
    const closing = new Promise<void>((resolve) => server!.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closing;
    server = undefined;
  };
  await start();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    requests,
    delivered,
    answerNext: (...answers) => queued.push(...answers),
    stop,
    start,
    close: stop,
  };
}
