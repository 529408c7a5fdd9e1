// The SMS a test server queued, read from its outbox and opened with the
// service's own keys — how a test sees a code when the server runs without
// delivery (runtime option deliver: false): the rows keep their sealed payloads.
import type { MessagePayload } from "../../src/domain/messages.ts";
import type { TestServer } from "./server.ts";

/** Every SMS queued to `phone` (E.164), oldest first; decoys (rows naming no account) never open. */
export function queuedSms(server: TestServer, phone: string): Promise<MessagePayload[]> {
  return queuedMessages(server, "phone_code", phone);
}

/** Every message of `kind` queued to `to`, oldest first, opened. */
export async function queuedMessages(server: TestServer, kind: string, to: string): Promise<MessagePayload[]> {
  const rows = (await server.rawRows("outbox")).filter((r) => r.kind === kind && r.account_id !== "" && r.payload !== null);
  rows.sort((a, b) => Number(a.created_at) - Number(b.created_at) || String(a.id).localeCompare(String(b.id)));
  const opened = await Promise.all(
    rows.map((r) =>
      server.runtime.app.accounts.openMessage({
        id: String(r.id),
        tenantId: String(r.tenant_id),
        accountId: String(r.account_id),
        kind: String(r.kind),
        payloadSealed: String(r.payload),
        createdAt: Number(r.created_at),
        attempts: Number(r.attempts),
        queuedAt: Number(r.queued_at ?? r.created_at),
      }),
    ),
  );
  return opened.filter((m): m is MessagePayload => m !== undefined && m.to === to);
}

/** The code of the newest SMS queued to `phone`; throws when there is none. */
export async function lastCode(server: TestServer, phone: string): Promise<string> {
  const sent = await queuedSms(server, phone);
  const code = sent.at(-1)?.variables.code;
  if (!code) throw new Error(`no SMS queued to ${phone}`);
  return code;
}
