// AccountService: the person's own consents and data export (ListConsents,
// UpdateConsents, ExportAccountData). Proto ⇄ domain only; the rules live in
// src/domain/consents.ts and src/domain/data-export.ts.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requestMeta, requireSession } from "./call-context.ts";
import { consentToProto } from "./convert.ts";

export type AccountPrivacyRpcs = "listConsents" | "updateConsents" | "exportAccountData";

export function accountPrivacyHandlers(app: App): Pick<ServiceImpl<typeof AccountService>, AccountPrivacyRpcs> {
  return {
    async listConsents(_req, ctx) {
      const { session } = requireSession(ctx);
      const [current, history] = await Promise.all([
        app.consents.current(session.tenantId, session.accountId),
        app.consents.history(session.tenantId, session.accountId),
      ]);
      return { consents: current.map(consentToProto), history: history.map(consentToProto) };
    },

    async updateConsents(req, ctx) {
      const { session, principal } = requireSession(ctx);
      const purposes = req.consents.map((c) => `${c.purpose}=${c.granted ? "granted" : "withdrawn"}`).join(", ");
      const current = await selfAudited(app, ctx, principal, "consent.update", purposes.slice(0, 400), () =>
        app.consents.record({ tenantId: session.tenantId, accountId: session.accountId }, req.consents, requestMeta(ctx).userAgent),
      );
      return { consents: current.map(consentToProto) };
    },

    async *exportAccountData(_req, ctx) {
      const { session } = requireSession(ctx);
      for await (const part of app.dataExport.parts(session.tenantId, session.accountId)) yield part;
    },
  };
}
