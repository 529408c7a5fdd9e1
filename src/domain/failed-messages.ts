// Failed messages, for operators (the outbox CLI and AdminService): list them
// a page at a time and put them back in the queue. What is shown is the
// message's kind, tenant, attempts, failure class and times — never its
// recipient or content (those stay sealed in the outbox until it is sent).
import { DomainError, invalidArgument } from "./errors.ts";
import { isId } from "./ids.ts";
import type { FailedMessage, OutboxOperations } from "./ports/outbox.ts";

export const FAILED_PAGE_SIZE_DEFAULT = 50;
export const FAILED_PAGE_SIZE_MAX = 500;

export interface FailedMessagePage {
  messages: FailedMessage[];
  /** "" on the last page. */
  nextPageToken: string;
}

export interface FailedMessages {
  /**
   * A page of failed messages, of one tenant or (tenantId undefined) of every
   * tenant, in (tenant, id) order. invalid_argument naming page_size or
   * page_token when they are not valid (a token is bound to its tenant filter).
   */
  list(input: { tenantId?: string; pageSize: number; pageToken: string }): Promise<FailedMessagePage>;
  /**
   * Puts one failed message back in the queue (a fresh start: due now, its
   * backoff and maximum age restarting); returns its tenant. Safe to repeat.
   * invalid_argument (message_id) when empty; not_found (MESSAGE_NOT_FOUND) when
   * no failed message has the id (in the tenant, when given); failed_precondition
   * (MESSAGE_PAYLOAD_GONE) when nothing is left to send (its account was erased).
   */
  requeue(input: { id: string; tenantId?: string }): Promise<{ tenantId: string }>;
  /** Requeues every failed message that can be (of the tenant, when given); returns how many. */
  requeueAll(input: { tenantId?: string }): Promise<number>;
}

const notFound = () => new DomainError("not_found", "MESSAGE_NOT_FOUND", "no failed message has this id");

/** Token: "f1.<tenant>.<id>.<filter>", base64url; the filter is the tenant listed ("*" for all). */
function encodeToken(last: FailedMessage, tenantId: string | undefined): string {
  return Buffer.from(`f1.${last.tenantId}.${last.id}.${tenantId ?? "*"}`).toString("base64url");
}

function decodeToken(token: string, tenantId: string | undefined): { tenantId: string; id: string } | undefined {
  if (token === "") return undefined;
  const malformed = () => invalidArgument("page_token", "is not a next_page_token of a previous call", "PAGE_TOKEN_INVALID");
  if (token.length > 300 || !/^[A-Za-z0-9_-]+$/.test(token)) throw malformed();
  const decoded = Buffer.from(token, "base64url").toString("latin1");
  const match = /^f1\.([A-Za-z0-9_-]{1,64})\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{1,64}|\*)$/.exec(decoded);
  // Only the canonical encoding is accepted (Node's decoder skips stray characters).
  if (!match || !isId(match[2]!) || Buffer.from(decoded, "latin1").toString("base64url") !== token) throw malformed();
  if (match[3] !== (tenantId ?? "*")) throw invalidArgument("page_token", "was issued for another tenant; keep the tenant while paging", "PAGE_TOKEN_INVALID");
  return { tenantId: match[1]!, id: match[2]! };
}

export function createFailedMessages(deps: { outbox: OutboxOperations; now: () => number; onRequeued?: () => void }): FailedMessages {
  return {
    async list({ tenantId, pageSize, pageToken }) {
      if (!Number.isInteger(pageSize) || pageSize < 0) throw invalidArgument("page_size", "must not be negative");
      const size = Math.min(pageSize || FAILED_PAGE_SIZE_DEFAULT, FAILED_PAGE_SIZE_MAX);
      const after = decodeToken(pageToken, tenantId);
      const rows = await deps.outbox.listFailed({ ...(tenantId !== undefined ? { tenantId } : {}), ...(after ? { after } : {}), limit: size + 1 });
      const messages = rows.slice(0, size);
      const last = messages.at(-1);
      return { messages, nextPageToken: rows.length > size && last ? encodeToken(last, tenantId) : "" };
    },

    async requeue({ id, tenantId }) {
      if (id === "") throw invalidArgument("message_id", "is required");
      if (!isId(id)) throw notFound(); // names no message: nothing to look up
      const result = await deps.outbox.requeue({ id, ...(tenantId !== undefined ? { tenantId } : {}), now: deps.now() });
      if (result.outcome === "not_found" || result.tenantId === undefined) throw notFound();
      if (result.outcome === "payload_gone") {
        throw new DomainError("failed_precondition", "MESSAGE_PAYLOAD_GONE", "the message can no longer be opened (its account was erased): nothing to send");
      }
      deps.onRequeued?.();
      return { tenantId: result.tenantId };
    },

    async requeueAll({ tenantId }) {
      const count = await deps.outbox.requeueAll({ ...(tenantId !== undefined ? { tenantId } : {}), now: deps.now() });
      if (count > 0) deps.onRequeued?.();
      return count;
    },
  };
}
