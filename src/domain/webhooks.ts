// A tenant's webhook endpoints (admin RPCs) and the pull stream of its events.
// Secrets are Standard Webhooks' `whsec_` base64 secrets, shown once at
// creation and kept sealed under the key-encryption key; delivery
// (src/delivery/webhook-worker.ts) opens them to sign.
import { isIpLiteral, isPrivateHostName, isPublicAddress } from "./network-address.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { newWebhookSecret } from "../crypto/webhook-signature.ts";
import { assertNoViolations, DomainError, invalidArgument, type FieldViolation } from "./errors.ts";
import { EVENT_TYPES, type SequencedEvent } from "./events.ts";
import { isId, newId } from "./ids.ts";
import type { EventStore, StoredWebhook, WebhookDelivery, WebhookStore } from "./ports/events.ts";
import type { Random } from "./ports/random.ts";
import type { Tenants } from "./tenants.ts";

export const WEBHOOK_URL_MAX = 2048;
/** Most webhooks one tenant may register (each event fans out to every one). */
export const WEBHOOKS_PER_TENANT_MAX = 20;
export const DELIVERIES_PAGE_DEFAULT = 50;
export const DELIVERIES_PAGE_MAX = 500;
const DELIVERY_STATUSES = ["pending", "delivered", "failed"];

/** The secret's context when sealed: bound to its webhook. */
export const webhookSecretContext = (webhookId: string) => `webhook:${webhookId}`;

export interface Webhooks {
  /** Registers an endpoint; the secret is in the result and nowhere else, ever. */
  create(input: { tenantId: string; url: string; eventTypes: readonly string[] }): Promise<{ webhook: StoredWebhook; secret: string }>;
  list(tenantId: string): Promise<StoredWebhook[]>;
  /** Changes the fields given; not_found WEBHOOK_NOT_FOUND. */
  update(input: { tenantId: string; id: string; url?: string; eventTypes?: readonly string[] }): Promise<StoredWebhook>;
  /** Deletes it with its deliveries; not_found WEBHOOK_NOT_FOUND. */
  delete(tenantId: string, id: string): Promise<void>;
  listDeliveries(input: { tenantId: string; webhookId: string; status: string; pageSize: number; pageToken: string }): Promise<{
    deliveries: WebhookDelivery[];
    nextPageToken: string;
  }>;
  /** Sends a delivery again as new; not_found WEBHOOK_NOT_FOUND / DELIVERY_NOT_FOUND. */
  requeue(input: { tenantId: string; webhookId: string; deliveryId: string }): Promise<void>;
  /**
   * The tenant's events after `cursor` ("" from the oldest kept), by number, as
   * they are numbered, until `signal` aborts; each with the cursor to resume after it.
   */
  follow(input: {
    tenantId: string;
    cursor: string;
    eventTypes: readonly string[];
    /** False: end once caught up. */
    live: boolean;
    signal: AbortSignal;
  }): AsyncIterable<{ event: SequencedEvent; cursor: string }>;
}

const notFound = () => new DomainError("not_found", "WEBHOOK_NOT_FOUND", "no such webhook in this tenant");

/** Where an endpoint may be: http allowed (development mode); private networks allowed (development mode or WEBHOOK_ALLOW_PRIVATE_NETWORKS). */
export interface EndpointPolicy {
  allowHttp: boolean;
  allowPrivateNetworks: boolean;
}

/**
 * An endpoint's URL (webhooks, blocking hooks): absolute, https (http too when
 * allowed), no credentials, and — unless private networks are allowed — not a
 * loopback, private, link-local or metadata address nor a name that always means
 * one (localhost, *.internal). A name is resolved again at every call and
 * refused then if any of its addresses is private (src/delivery/guarded-http.ts).
 */
export function checkWebhookUrl(raw: string, policy: EndpointPolicy, violations: FieldViolation[]): string {
  const { allowHttp } = policy;
  const url = raw.trim();
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    violations.push({ field: "url", description: "is not an absolute URL" });
    return url;
  }
  if (url.length > WEBHOOK_URL_MAX) violations.push({ field: "url", description: `must be at most ${WEBHOOK_URL_MAX} characters` });
  else if (parsed.protocol !== "https:" && !(allowHttp && parsed.protocol === "http:"))
    violations.push({ field: "url", description: allowHttp ? "must be an http or https URL" : "must be an https URL (http only in development mode)" });
  else if (parsed.username || parsed.password) violations.push({ field: "url", description: "must not carry credentials" });
  else if (!policy.allowPrivateNetworks && (isPrivateHostName(parsed.hostname) || (isIpLiteral(parsed.hostname) && !isPublicAddress(parsed.hostname))))
    violations.push({
      field: "url",
      description: "must not point at a loopback, private or link-local address (set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to deliver to internal hosts)",
    });
  return url;
}

export function checkEventTypes(field: string, types: readonly string[], violations: FieldViolation[]): string[] {
  types.forEach((t, i) => {
    if (!EVENT_TYPES.includes(t)) violations.push({ field: `${field}[${i}]`, description: `"${t.slice(0, 40)}" is not one of ${EVENT_TYPES.join(", ")}` });
    else if (types.indexOf(t) !== i) violations.push({ field: `${field}[${i}]`, description: `repeats "${t}"` });
  });
  return [...types];
}

/** A stream cursor: the decimal number of the last event received. */
function parseCursor(cursor: string): number {
  if (cursor === "") return 0;
  if (!/^[0-9]{1,15}$/.test(cursor)) throw invalidArgument("cursor", "is not a cursor of a previous event", "CURSOR_INVALID");
  return Number(cursor);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export function createWebhooks(deps: {
  webhooks: WebhookStore;
  events: Pick<EventStore, "readAfter" | "purgedThrough">;
  tenants: Pick<Tenants, "get">;
  keyring: Pick<Keyring, "sealSecret">;
  /** http:// endpoints (development mode only) and private addresses (development mode or WEBHOOK_ALLOW_PRIVATE_NETWORKS). */
  endpoints: EndpointPolicy;
  now: () => number;
  random?: Random;
  /** How often a follower with nothing new looks again (default 250 ms). */
  followPollMs?: number;
}): Webhooks {
  const { webhooks, now } = deps;
  const followPollMs = deps.followPollMs ?? 250;

  async function existing(tenantId: string, id: string): Promise<StoredWebhook> {
    if (!isId(id)) throw invalidArgument("webhook_id", "is not a webhook id");
    const found = await webhooks.get(tenantId, id);
    if (!found) throw notFound();
    return found;
  }

  return {
    async create({ tenantId, url, eventTypes }) {
      const violations: FieldViolation[] = [];
      const checkedUrl = checkWebhookUrl(url, deps.endpoints, violations);
      const types = checkEventTypes("event_types", eventTypes, violations);
      assertNoViolations(violations);
      await deps.tenants.get(tenantId); // not_found TENANT_NOT_FOUND
      if ((await webhooks.list(tenantId)).length >= WEBHOOKS_PER_TENANT_MAX)
        throw new DomainError("failed_precondition", "WEBHOOK_LIMIT", `a tenant has at most ${WEBHOOKS_PER_TENANT_MAX} webhooks`);
      const at = now();
      const id = newId(at, deps.random);
      const secret = newWebhookSecret();
      const webhook: StoredWebhook = {
        id,
        tenantId,
        url: checkedUrl,
        eventTypes: types,
        secretSealed: deps.keyring.sealSecret(webhookSecretContext(id), Buffer.from(secret, "utf8")),
        createdAt: at,
        updatedAt: at,
      };
      await webhooks.create(webhook);
      return { webhook, secret };
    },

    list: (tenantId) => webhooks.list(tenantId),

    async update({ tenantId, id, url, eventTypes }) {
      const violations: FieldViolation[] = [];
      const checkedUrl = url === undefined ? undefined : checkWebhookUrl(url, deps.endpoints, violations);
      const types = eventTypes === undefined ? undefined : checkEventTypes("webhook.event_types", eventTypes, violations);
      for (const v of violations) if (v.field === "url") Object.assign(v, { field: "webhook.url" });
      assertNoViolations(violations);
      const current = await existing(tenantId, id);
      const updated = await webhooks.update({ tenantId, id, url: checkedUrl ?? current.url, eventTypes: types ?? current.eventTypes, at: now() });
      if (!updated) throw notFound();
      return updated;
    },

    async delete(tenantId, id) {
      if (!isId(id)) throw invalidArgument("webhook_id", "is not a webhook id");
      if (!(await webhooks.delete(tenantId, id))) throw notFound();
    },

    async listDeliveries({ tenantId, webhookId, status, pageSize, pageToken }) {
      if (pageSize < 0 || pageSize > DELIVERIES_PAGE_MAX) throw invalidArgument("page_size", `must be between 0 and ${DELIVERIES_PAGE_MAX}`);
      if (status !== "" && !DELIVERY_STATUSES.includes(status)) throw invalidArgument("status", `must be one of ${DELIVERY_STATUSES.join(", ")}`);
      if (pageToken !== "" && !/^[1-9][0-9]{0,14}$/.test(pageToken))
        throw invalidArgument("page_token", "is not a next_page_token of a previous call", "PAGE_TOKEN_INVALID");
      await existing(tenantId, webhookId);
      const size = pageSize || DELIVERIES_PAGE_DEFAULT;
      const rows = await webhooks.listDeliveries({
        tenantId,
        webhookId,
        ...(status ? { status } : {}),
        ...(pageToken ? { beforeSequence: Number(pageToken) } : {}),
        limit: size + 1,
      });
      const page = rows.slice(0, size);
      return { deliveries: page, nextPageToken: rows.length > size ? String(page.at(-1)?.sequence ?? "") : "" };
    },

    async requeue({ tenantId, webhookId, deliveryId }) {
      if (!isId(deliveryId)) throw invalidArgument("delivery_id", "is not a delivery id");
      await existing(tenantId, webhookId);
      if (!(await webhooks.requeue({ tenantId, webhookId, deliveryId, now: now() })))
        throw new DomainError("not_found", "DELIVERY_NOT_FOUND", "no such delivery of this webhook");
    },

    follow({ tenantId, cursor, eventTypes, live, signal }) {
      const violations: FieldViolation[] = [];
      const types = checkEventTypes("event_types", eventTypes, violations);
      assertNoViolations(violations);
      let after = parseCursor(cursor);
      return {
        async *[Symbol.asyncIterator]() {
          // A cursor older than retention lost events: say so rather than skip them silently.
          if (cursor !== "" && after < (await deps.events.purgedThrough(tenantId)))
            throw new DomainError(
              "failed_precondition",
              "CURSOR_EXPIRED",
              "events after this cursor were deleted by retention (EVENT_RETENTION_DAYS): resynchronize, then follow from an empty cursor",
            );
          while (!signal.aborted) {
            const batch = await deps.events.readAfter({ tenantId, afterSequence: after, ...(types.length ? { types } : {}), limit: 100 });
            for (const event of batch) {
              after = event.sequence;
              yield { event, cursor: String(event.sequence) };
            }
            if (batch.length < 100) {
              if (!live) return;
              await sleep(followPollMs, signal);
            }
          }
        },
      };
    },
  };
}
