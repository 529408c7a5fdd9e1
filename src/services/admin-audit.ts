// AdminService: the audit trail (ListAuditEvents, VerifyAuditChain). Proto ⇄
// domain only; the rules live in src/domain/audit.ts.
//
// Who may call: an ADMIN (or a platform super admin) of the tenant, or an API
// key of the tenant holding audit.read — checked by authorize() before anything
// is read. A super admin names another tenant with the x-tenant-id header.
// Reading the log is itself audited ("audit.list" — its target is the target
// filter, so looking up what was done to a person is recorded against them —
// and "audit.verify"), in the tenant read.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema, type AuditEvent as AuditEventMessage } from "../../gen/identity/v1/admin_service_pb.js";
import type { AuditEvent } from "../domain/audit-log.ts";
import { invalidArgument } from "../domain/errors.ts";
import { Role } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

const AUDIT_READ = { permission: "audit.read", minRole: Role.ADMIN } as const;

export function auditEventToProto(event: AuditEvent): AuditEventMessage {
  return create(AuditEventSchema, {
    sequence: BigInt(event.sequence),
    tenantId: event.tenantId,
    actor: event.actor,
    action: event.action,
    target: event.target,
    reason: event.reason,
    ipAddress: event.ip,
    userAgent: event.userAgent,
    outcome: event.outcome,
    eventTime: timestampFromMs(event.at),
    hash: event.hash,
  });
}

/** Epoch milliseconds of an optional Timestamp; invalid_argument naming the field when out of range. */
/** 9999-12-31T23:59:59.999Z: the last instant a google.protobuf.Timestamp may hold (JSON cannot write a later one). */
const MAX_TIMESTAMP_MS = 253_402_300_799_999;

export function timestampToEpochMs(field: string, timestamp: Timestamp | undefined): number | undefined {
  if (!timestamp) return undefined;
  const ms = Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000);
  // A time kept past year 9999 would answer Internal on every later read over JSON.
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TIMESTAMP_MS || timestamp.nanos < 0 || timestamp.nanos > 999_999_999)
    throw invalidArgument(field, "is not a valid time");
  return ms;
}

export type AuditRpcs = "listAuditEvents" | "verifyAuditChain";

export function auditHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, AuditRpcs> {
  return {
    async listAuditEvents(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, AUDIT_READ);
      const page = await audited(
        app,
        ctx,
        principal,
        { tenantId, action: "audit.list", target: req.target.includes("@") ? "" : req.target.slice(0, 128) },
        async () =>
          app.audit.list({
            tenantId,
            actor: req.actor,
            target: req.target,
            action: req.action,
            after: timestampToEpochMs("after", req.after),
            before: timestampToEpochMs("before", req.before),
            pageSize: req.pageSize,
            pageToken: req.pageToken,
          }),
      );
      return { events: page.events.map(auditEventToProto), nextPageToken: page.nextPageToken };
    },

    async verifyAuditChain(_req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, AUDIT_READ);
      const result = await audited(app, ctx, principal, { tenantId, action: "audit.verify", target: "" }, () => app.audit.verify(tenantId));
      return { intact: result.intact, firstBrokenSequence: BigInt(result.firstBrokenSequence), checkedCount: BigInt(result.checkedCount) };
    },
  };
}
