// A tenant's own message templates: per message kind and locale, a subject, a
// text body and an HTML body with {{variables}}. Each kind names its variables
// (TEMPLATE_VARIABLES); a template is parsed and checked when saved — a broken
// one, an unknown variable or a missing required one is InvalidArgument naming
// the field — so delivery never meets one it cannot render. Values are
// HTML-escaped in the HTML body (the template's own markup is kept). Delivery
// looks for the tenant's template along the locale chain: the message's locale
// (the request's, else the account's), the tenant's default, then English; with
// none, the built-in template in the message's locale is used.
import { assertNoViolations, DomainError, invalidArgument, type FieldViolation } from "./errors.ts";
import { MessageKind, messageChannel } from "./messages.ts";
import type { MessageRenderer, StoredTemplate, TemplateStore } from "./ports/templates.ts";
import type { Tenants } from "./tenants.ts";
import { SUPPORTED_LOCALES, type Locale } from "./types.ts";

/** The variables each kind's template may use; `required` ones must appear in the text (and HTML) body. */
export const TEMPLATE_VARIABLES: Record<MessageKind, { variables: readonly string[]; required: readonly string[] }> = {
  verify_email: { variables: ["product", "link", "expiresIn"], required: ["link"] },
  signup_existing: { variables: ["product"], required: [] },
  phone_existing: { variables: ["product"], required: [] },
  password_reset: { variables: ["product", "link", "code", "expiresIn"], required: ["link"] },
  email_change_code: { variables: ["product", "code", "expiresIn"], required: ["code"] },
  email_change_requested: { variables: ["product", "email"], required: [] },
  email_changed_notice: { variables: ["product", "email"], required: [] },
  password_changed_notice: { variables: ["product"], required: [] },
  invitation: { variables: ["product", "link", "expiresIn"], required: ["link"] },
  trial_ended: { variables: ["product", "plan", "freePlan"], required: ["plan"] },
  subscription_expired: { variables: ["product", "plan", "freePlan"], required: ["plan"] },
  renewal_reminder: { variables: ["product", "plan", "date"], required: ["plan", "date"] },
  phone_code: { variables: ["product", "code", "expiresIn"], required: ["code"] },
  second_factor_added: { variables: ["product"], required: [] },
  second_factor_removed: { variables: ["product"], required: [] },
  recovery_code_used: { variables: ["product"], required: [] },
};

/** What a preview fills the variables with. */
export const SAMPLE_VARIABLES: Record<string, string> = {
  link: "https://app.example.com/verify-email?token=SAMPLE-TOKEN",
  code: "123456",
  expiresInMinutes: "1440",
  minutes: "10",
  newEmail: "jane.doe@example.com",
  plan: "Pro",
  freePlan: "Free",
  date: "2026-12-31",
};

const SUBJECT_MAX = 200;
const TEXT_MAX = 10_000;
const HTML_MAX = 50_000;
const SMS_MAX = 480;

export type TemplatePart = { text: string } | { variable: string };

/** Thrown by parseTemplate: where and why the template is broken. */
export class TemplateSyntaxError extends Error {}

/** Splits a template into text and {{variable}} parts; throws TemplateSyntaxError when broken. */
export function parseTemplate(source: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let at = 0;
  while (at < source.length) {
    const open = source.indexOf("{{", at);
    if (open < 0) {
      parts.push({ text: source.slice(at) });
      break;
    }
    if (open > at) parts.push({ text: source.slice(at, open) });
    const close = source.indexOf("}}", open + 2);
    if (close < 0) throw new TemplateSyntaxError(`has an unclosed "{{" at character ${open + 1}`);
    const name = source.slice(open + 2, close).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TemplateSyntaxError(`has "{{${name.slice(0, 40)}}}" at character ${open + 1}, not a variable name`);
    parts.push({ variable: name });
    at = close + 2;
  }
  return parts;
}

export interface MessageTemplates {
  /** Creates or replaces the tenant's template for (kind, locale), checked. */
  set(input: { tenantId: string; kind: string; locale: string; subject: string; textBody: string; htmlBody: string }): Promise<StoredTemplate>;
  /** not_found TEMPLATE_NOT_FOUND. */
  get(tenantId: string, kind: string, locale: string): Promise<StoredTemplate>;
  list(tenantId: string): Promise<StoredTemplate[]>;
  /** not_found TEMPLATE_NOT_FOUND. */
  delete(tenantId: string, kind: string, locale: string): Promise<void>;
  /**
   * Renders with sample values: `draft` when given (checked as set() checks it),
   * else what delivery would use for (kind, locale) in the tenant.
   */
  preview(input: {
    tenantId: string;
    kind: string;
    locale: string;
    draft?: { subject: string; textBody: string; htmlBody: string };
  }): Promise<{ subject: string; text: string; html: string; source: "draft" | "tenant" | "built_in" }>;
  /** The tenant's template delivery uses for a message: along the locale chain; undefined: the built-in one. */
  find(tenantId: string, kind: string, locale: string): Promise<StoredTemplate | undefined>;
}

function checkKind(raw: string): MessageKind {
  if (!(Object.values(MessageKind) as string[]).includes(raw)) throw invalidArgument("kind", `must be one of ${Object.values(MessageKind).join(", ")}`);
  return raw as MessageKind;
}

function checkLocale(raw: string): Locale {
  if (!(SUPPORTED_LOCALES as readonly string[]).includes(raw)) throw invalidArgument("locale", `must be one of ${SUPPORTED_LOCALES.join(", ")}`);
  return raw as Locale;
}

/** Checks one field of a template: syntax, known variables, required ones; adds violations. */
function checkField(field: string, source: string, kind: MessageKind, required: boolean, violations: FieldViolation[]): void {
  let parts: TemplatePart[];
  try {
    parts = parseTemplate(source);
  } catch (error) {
    violations.push({ field, description: (error as Error).message });
    return;
  }
  const { variables, required: needed } = TEMPLATE_VARIABLES[kind];
  const used = new Set<string>();
  for (const part of parts) {
    if (!("variable" in part)) continue;
    if (!variables.includes(part.variable)) {
      violations.push({ field, description: `uses the unknown variable {{${part.variable.slice(0, 40)}}}; ${kind} has ${variables.join(", ")}` });
      return;
    }
    used.add(part.variable);
  }
  if (required) for (const need of needed) if (!used.has(need)) violations.push({ field, description: `must use {{${need}}}` });
}

/** A whole template, checked: InvalidArgument naming every broken field. */
export function checkTemplate(kind: MessageKind, template: { subject: string; textBody: string; htmlBody: string }): void {
  const violations: FieldViolation[] = [];
  if (messageChannel(kind) === "sms") {
    if (template.subject !== "") violations.push({ field: "subject", description: "must be empty for an SMS" });
    if (template.htmlBody !== "") violations.push({ field: "html_body", description: "must be empty for an SMS" });
    if (template.textBody.trim() === "") violations.push({ field: "text_body", description: "is required" });
    else if (template.textBody.length > SMS_MAX) violations.push({ field: "text_body", description: `must be at most ${SMS_MAX} characters` });
    else checkField("text_body", template.textBody, kind, true, violations);
  } else {
    if (template.subject.trim() === "") violations.push({ field: "subject", description: "is required" });
    else if (template.subject.length > SUBJECT_MAX) violations.push({ field: "subject", description: `must be at most ${SUBJECT_MAX} characters` });
    else if (/[\r\n]/.test(template.subject)) violations.push({ field: "subject", description: "must be one line" });
    else checkField("subject", template.subject, kind, false, violations);
    if (template.textBody.trim() === "") violations.push({ field: "text_body", description: "is required" });
    else if (template.textBody.length > TEXT_MAX) violations.push({ field: "text_body", description: `must be at most ${TEXT_MAX} characters` });
    else checkField("text_body", template.textBody, kind, true, violations);
    if (template.htmlBody.length > HTML_MAX) violations.push({ field: "html_body", description: `must be at most ${HTML_MAX} characters` });
    else if (template.htmlBody !== "") checkField("html_body", template.htmlBody, kind, true, violations);
  }
  assertNoViolations(violations);
}

const notFound = () => new DomainError("not_found", "TEMPLATE_NOT_FOUND", "the tenant has no template for this kind and locale");

export function createMessageTemplates(deps: {
  store: TemplateStore;
  tenants: Pick<Tenants, "get">;
  renderer: MessageRenderer;
  now: () => number;
}): MessageTemplates {
  const { store } = deps;

  async function find(tenantId: string, kind: string, locale: string): Promise<StoredTemplate | undefined> {
    const tenant = await deps.tenants.get(tenantId);
    const chain = [...new Set([locale, tenant.settings.defaultLocale, "en"])];
    for (const candidate of chain) {
      const found = await store.get(tenantId, kind, candidate);
      if (found) return found;
    }
    return undefined;
  }

  return {
    async set({ tenantId, kind: rawKind, locale: rawLocale, subject, textBody, htmlBody }) {
      const kind = checkKind(rawKind);
      const locale = checkLocale(rawLocale);
      checkTemplate(kind, { subject, textBody, htmlBody });
      await deps.tenants.get(tenantId); // not_found TENANT_NOT_FOUND
      const template: StoredTemplate = { tenantId, kind, locale, subject, textBody, htmlBody, updatedAt: deps.now() };
      await store.put(template);
      return template;
    },

    async get(tenantId, kind, locale) {
      const found = await store.get(tenantId, checkKind(kind), checkLocale(locale));
      if (!found) throw notFound();
      return found;
    },

    list: (tenantId) => store.list(tenantId),

    async delete(tenantId, kind, locale) {
      if (!(await store.delete(tenantId, checkKind(kind), checkLocale(locale)))) throw notFound();
    },

    async preview({ tenantId, kind: rawKind, locale: rawLocale, draft }) {
      const kind = checkKind(rawKind);
      const locale = checkLocale(rawLocale);
      const payload = { kind, locale, variables: SAMPLE_VARIABLES };
      if (draft) {
        checkTemplate(kind, draft);
        return { ...deps.renderer.render(payload, draft), source: "draft" };
      }
      const template = await find(tenantId, kind, locale);
      return { ...deps.renderer.render(payload, template), source: template ? "tenant" : "built_in" };
    },

    find,
  };
}
