// AdminService: webhooks (CreateWebhook … RequeueWebhookDelivery) and the pull
// stream of events (StreamEvents). Proto ⇄ domain only; the rules live in
// src/domain/webhooks.ts.
//
// Who may call: an ADMIN of the tenant, or a platform super admin (any tenant);
// no API key may manage webhooks (their secrets sign what receivers trust), and
// API keys with events.read may follow the stream. Every call is audited in the
// tenant ("webhook.*", "events.stream").
import type { ServiceImpl } from "@connectrpc/connect";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import {
  EventSchema,
  WebhookDeliverySchema,
  WebhookSchema,
  type Event as EventProto,
  type Webhook as WebhookProto,
  type WebhookDelivery as WebhookDeliveryProto,
} from "../../gen/identity/v1/webhooks_pb.js";
import { invalidArgument } from "../domain/errors.ts";
import type { DomainEvent } from "../domain/events.ts";
import { isId } from "../domain/ids.ts";
import type { StoredWebhook, WebhookDelivery } from "../domain/ports/events.ts";
import { Role } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

const WEBHOOK_ADMIN = { permission: null, minRole: Role.ADMIN } as const;
const EVENT_READER = { permission: "events.read", minRole: Role.ADMIN } as const;
const UPDATABLE = ["url", "event_types"];

function webhookToProto(webhook: StoredWebhook): WebhookProto {
  return create(WebhookSchema, {
    id: webhook.id,
    tenantId: webhook.tenantId,
    url: webhook.url,
    eventTypes: webhook.eventTypes,
    createTime: timestampFromMs(webhook.createdAt),
    updateTime: timestampFromMs(webhook.updatedAt),
  });
}

function deliveryToProto(delivery: WebhookDelivery): WebhookDeliveryProto {
  return create(WebhookDeliverySchema, {
    id: delivery.id,
    webhookId: delivery.webhookId,
    eventId: delivery.eventId,
    eventType: delivery.eventType,
    accountId: delivery.accountId ?? "",
    status: delivery.status,
    attempts: delivery.attempts,
    lastError: delivery.lastError,
    createTime: timestampFromMs(delivery.createdAt),
    ...(delivery.status === "pending" ? { nextAttemptTime: timestampFromMs(delivery.nextAttemptAt) } : {}),
    ...(delivery.deliveredAt === null ? {} : { deliverTime: timestampFromMs(delivery.deliveredAt) }),
  });
}

export function eventToProto(event: DomainEvent): EventProto {
  return create(EventSchema, {
    id: event.id,
    type: event.type,
    tenantId: event.tenantId,
    accountId: event.accountId ?? "",
    createTime: timestampFromMs(event.createdAt),
    data: event.data as JsonObject,
  });
}

const target = (id: string) => (isId(id) ? `webhook:${id}` : "");

export type WebhookRpcs =
  | "createWebhook"
  | "listWebhooks"
  | "updateWebhook"
  | "deleteWebhook"
  | "listWebhookDeliveries"
  | "requeueWebhookDelivery"
  | "streamEvents";

export function webhookHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, WebhookRpcs> {
  return {
    async createWebhook(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...WEBHOOK_ADMIN, tenantId: req.tenantId });
      const { webhook, secret } = await audited(
        app,
        ctx,
        principal,
        { tenantId, action: "webhook.create", target: "" },
        () => app.webhooks.create({ tenantId, url: req.url, eventTypes: req.eventTypes }),
        (created) => ({ tenantId, target: `webhook:${created.webhook.id}` }),
      );
      return { webhook: webhookToProto(webhook), secret };
    },

    async listWebhooks(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...WEBHOOK_ADMIN, tenantId: req.tenantId });
      const list = await audited(app, ctx, principal, { tenantId, action: "webhook.list", target: "" }, () => app.webhooks.list(tenantId));
      return { webhooks: list.map(webhookToProto) };
    },

    async updateWebhook(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...WEBHOOK_ADMIN, tenantId: req.tenantId });
      const paths = req.updateMask?.paths ?? [];
      if (paths.length === 0) throw invalidArgument("update_mask", `name the fields to change: ${UPDATABLE.join(", ")}`);
      for (const path of paths) {
        if (!UPDATABLE.includes(path)) throw invalidArgument("update_mask", `"${path.slice(0, 80)}" is not an updatable webhook field`);
      }
      const id = req.webhook?.id ?? "";
      const updated = await audited(app, ctx, principal, { tenantId, action: "webhook.update", target: target(id) }, () =>
        app.webhooks.update({
          tenantId,
          id,
          ...(paths.includes("url") ? { url: req.webhook?.url ?? "" } : {}),
          ...(paths.includes("event_types") ? { eventTypes: req.webhook?.eventTypes ?? [] } : {}),
        }),
      );
      return { webhook: webhookToProto(updated) };
    },

    async deleteWebhook(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...WEBHOOK_ADMIN, tenantId: req.tenantId });
      await audited(app, ctx, principal, { tenantId, action: "webhook.delete", target: target(req.webhookId) }, () =>
        app.webhooks.delete(tenantId, req.webhookId),
      );
      return {};
    },

    async listWebhookDeliveries(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...WEBHOOK_ADMIN, tenantId: req.tenantId });
      const page = await audited(app, ctx, principal, { tenantId, action: "webhook.list_deliveries", target: target(req.webhookId) }, () =>
        app.webhooks.listDeliveries({ tenantId, webhookId: req.webhookId, status: req.status, pageSize: req.pageSize, pageToken: req.pageToken }),
      );
      return { deliveries: page.deliveries.map(deliveryToProto), nextPageToken: page.nextPageToken };
    },

    async requeueWebhookDelivery(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...WEBHOOK_ADMIN, tenantId: req.tenantId });
      await audited(app, ctx, principal, { tenantId, action: "webhook.requeue", target: target(req.webhookId) }, () =>
        app.webhooks.requeue({ tenantId, webhookId: req.webhookId, deliveryId: req.deliveryId }),
      );
      return {};
    },

    async *streamEvents(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...EVENT_READER, tenantId: req.tenantId });
      const events = await audited(app, ctx, principal, { tenantId, action: "events.stream", target: "" }, async () =>
        app.webhooks.follow({ tenantId, cursor: req.cursor, eventTypes: req.eventTypes, live: req.follow, signal: ctx.signal }),
      );
      for await (const { event, cursor } of events) yield { event: eventToProto(event), cursor };
    },
  };
}
