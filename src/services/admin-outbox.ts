// AdminService: failed messages (ListFailedMessages, RequeueMessage). Proto ⇄
// domain only; the rules live in src/domain/failed-messages.ts.
//
// Who may call: an ADMIN of the tenant, or a platform super admin (any tenant,
// named with x-tenant-id); no API key — a requeue sends mail to a person.
// Both are audited in the tenant: "outbox.list_failed", and "outbox.requeue"
// with the message as target.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  DeliveryFailureClass,
  FailedMessageSchema,
  type AdminService,
  type FailedMessage as FailedMessageProto,
} from "../../gen/identity/v1/admin_service_pb.js";
import { isId } from "../domain/ids.ts";
import type { FailedMessage } from "../domain/ports/outbox.ts";
import { Role } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

const OUTBOX_ADMIN = { permission: null, minRole: Role.ADMIN } as const;

const CLASSES: Record<string, DeliveryFailureClass> = {
  permanent: DeliveryFailureClass.PERMANENT,
  transient: DeliveryFailureClass.TRANSIENT,
};

export function failedMessageToProto(message: FailedMessage): FailedMessageProto {
  return create(FailedMessageSchema, {
    id: message.id,
    tenantId: message.tenantId,
    kind: message.kind,
    attempts: message.attempts,
    lastErrorClass: CLASSES[message.lastErrorClass] ?? DeliveryFailureClass.UNSPECIFIED,
    lastError: message.lastError,
    createTime: timestampFromMs(message.createdAt),
    queueTime: timestampFromMs(message.queuedAt),
    ...(message.failedAt === null ? {} : { failTime: timestampFromMs(message.failedAt) }),
    requeueable: message.requeueable,
  });
}

export type OutboxRpcs = "listFailedMessages" | "requeueMessage";

export function outboxHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, OutboxRpcs> {
  return {
    async listFailedMessages(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, OUTBOX_ADMIN);
      const page = await audited(app, ctx, principal, { tenantId, action: "outbox.list_failed", target: "" }, () =>
        app.failedMessages.list({ tenantId, pageSize: req.pageSize, pageToken: req.pageToken }),
      );
      return { messages: page.messages.map(failedMessageToProto), nextPageToken: page.nextPageToken };
    },

    async requeueMessage(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, OUTBOX_ADMIN);
      // Only a well-formed id becomes the audit target: whatever else was sent is not recorded.
      const target = isId(req.messageId) ? `message:${req.messageId}` : "";
      await audited(app, ctx, principal, { tenantId, action: "outbox.requeue", target }, () => app.failedMessages.requeue({ id: req.messageId, tenantId }));
      return {};
    },
  };
}
