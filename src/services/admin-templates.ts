// AdminService: a tenant's message templates (SetMessageTemplate,
// GetMessageTemplate, ListMessageTemplates, DeleteMessageTemplate,
// PreviewMessageTemplate). Proto ⇄ domain only; the rules live in
// src/domain/message-templates.ts. Callers: an ADMIN of the tenant or a
// platform super admin; no API key. Changes and reads are audited
// ("template.*", the kind and locale as target); a preview reads nobody's data.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { MessageTemplateSchema, type MessageTemplate as MessageTemplateProto } from "../../gen/identity/v1/templates_pb.js";
import { MessageKind } from "../domain/messages.ts";
import type { StoredTemplate } from "../domain/ports/templates.ts";
import { Role, SUPPORTED_LOCALES } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

const TEMPLATE_ADMIN = { permission: null, minRole: Role.ADMIN } as const;

function templateToProto(template: StoredTemplate): MessageTemplateProto {
  return create(MessageTemplateSchema, {
    tenantId: template.tenantId,
    kind: template.kind,
    locale: template.locale,
    subject: template.subject,
    textBody: template.textBody,
    htmlBody: template.htmlBody,
    updateTime: timestampFromMs(template.updatedAt),
  });
}

/** Only a known kind and locale become the audit target: whatever else was sent is not recorded. */
function target(kind: string, locale: string): string {
  const known = (Object.values(MessageKind) as string[]).includes(kind) && (SUPPORTED_LOCALES as readonly string[]).includes(locale);
  return known ? `template:${kind}/${locale}` : "";
}

export type TemplateRpcs = "setMessageTemplate" | "getMessageTemplate" | "listMessageTemplates" | "deleteMessageTemplate" | "previewMessageTemplate";

export function templateHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, TemplateRpcs> {
  return {
    async setMessageTemplate(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...TEMPLATE_ADMIN, tenantId: req.tenantId });
      const template = await audited(app, ctx, principal, { tenantId, action: "template.set", target: target(req.kind, req.locale) }, () =>
        app.templates.set({ tenantId, kind: req.kind, locale: req.locale, subject: req.subject, textBody: req.textBody, htmlBody: req.htmlBody }),
      );
      return { template: templateToProto(template) };
    },

    async getMessageTemplate(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...TEMPLATE_ADMIN, tenantId: req.tenantId });
      const template = await audited(app, ctx, principal, { tenantId, action: "template.get", target: target(req.kind, req.locale) }, () =>
        app.templates.get(tenantId, req.kind, req.locale),
      );
      return { template: templateToProto(template) };
    },

    async listMessageTemplates(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...TEMPLATE_ADMIN, tenantId: req.tenantId });
      const templates = await audited(app, ctx, principal, { tenantId, action: "template.list", target: "" }, () => app.templates.list(tenantId));
      return { templates: templates.map(templateToProto) };
    },

    async deleteMessageTemplate(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...TEMPLATE_ADMIN, tenantId: req.tenantId });
      await audited(app, ctx, principal, { tenantId, action: "template.delete", target: target(req.kind, req.locale) }, () =>
        app.templates.delete(tenantId, req.kind, req.locale),
      );
      return {};
    },

    async previewMessageTemplate(req, ctx) {
      const { tenantId } = await authorize(app, ctx, { ...TEMPLATE_ADMIN, tenantId: req.tenantId });
      const draft = req.draft ? { subject: req.draft.subject, textBody: req.draft.textBody, htmlBody: req.draft.htmlBody } : undefined;
      const rendered = await app.templates.preview({ tenantId, kind: req.kind, locale: req.locale, ...(draft ? { draft } : {}) });
      return { subject: rendered.subject, textBody: rendered.text, htmlBody: rendered.html, source: rendered.source };
    },
  };
}
