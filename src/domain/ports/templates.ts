// A tenant's message templates (migration 0012): one per (kind, locale), used
// by delivery before the built-in ones (src/domain/message-templates.ts). See
// ./errors.ts for the errors every method may throw.

export interface StoredTemplate {
  tenantId: string;
  kind: string;
  locale: string;
  subject: string;
  textBody: string;
  /** Empty: the HTML is made from the text. */
  htmlBody: string;
  updatedAt: number;
}

export interface TemplateStore {
  get(tenantId: string, kind: string, locale: string): Promise<StoredTemplate | undefined>;
  /** The tenant's templates by kind, then locale. */
  list(tenantId: string): Promise<StoredTemplate[]>;
  /** Creates or replaces it. */
  put(template: StoredTemplate): Promise<void>;
  /** False when there was none. */
  delete(tenantId: string, kind: string, locale: string): Promise<boolean>;
}

/** Renders a message as delivery would (src/delivery/templates.ts): the built-in template, or `template` when given. */
export interface MessageRenderer {
  render(
    payload: { kind: string; locale: string; variables: Record<string, string> },
    template?: Pick<StoredTemplate, "subject" | "textBody" | "htmlBody">,
  ): { subject: string; text: string; html: string };
}
