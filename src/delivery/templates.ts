// Message templates: one table of strings per locale, no template engine. Each
// email kind is a subject and paragraphs with {placeholders}; the same table
// yields the plain text and a small HTML version in which every value is
// escaped. Each SMS kind is one short line of text (no link).
import { type EmailMessageKind, type MessagePayload, messageChannel, type SmsMessageKind } from "../domain/messages.ts";
import type { LocaleStrings, SmsTable, Table } from "./locale-strings.ts";
import { parseTemplate } from "../domain/message-templates.ts";
import type { MessageRenderer, StoredTemplate } from "../domain/ports/templates.ts";
import type { Locale } from "../domain/types.ts";
import { de } from "./locales/de.ts";
import { es } from "./locales/es.ts";
import type { RenderedMessage } from "./types.ts";

const smsEn: SmsTable = {
  phone_code: { text: "{code} is your {product} code. It expires in {expiresIn}. Do not share it with anyone.", required: ["code", "minutes"] },
};

const smsFr: SmsTable = {
  phone_code: {
    text: "{code} est votre code {product}. Il expire dans {expiresIn}. Ne le communiquez à personne.",
    required: ["code", "minutes"],
  },
};

const en: Table = {
  verify_email: {
    subject: "Confirm your email address for {product}",
    paragraphs: [
      "Welcome to {product}. To finish creating your account, confirm your email address by opening this link:",
      "{link}",
      "This link expires in {expiresIn}.",
      "If you did not create an account, you can ignore this email.",
    ],
    required: ["link"],
  },
  phone_existing: {
    subject: "Someone tried to add your phone number to another {product} account",
    paragraphs: [
      "Someone signed in to {product} tried to add a phone number that belongs to your account to their own account. It was not added: the number stays yours.",
      "If it was you, signed in with another account, sign in with this one instead.",
      "If it was not you, you can ignore this email: your account has not changed.",
    ],
    required: [],
  },
  signup_existing: {
    subject: "Someone tried to create a {product} account with your address",
    paragraphs: [
      "Someone tried to create a {product} account with this email address, but you already have an account.",
      "If it was you, sign in or reset your password.",
      "If it was not you, you can ignore this email: your account has not changed.",
    ],
    required: [],
  },
  password_reset: {
    subject: "Reset your {product} password",
    paragraphs: [
      "We received a request to reset the password of your {product} account.",
      "To choose a new password, open this link: {link}",
      "Reset code: {code}",
      "This request expires in {expiresIn}.",
      "If you did not ask to reset your password, ignore this email: your password stays the same.",
    ],
    required: ["link|code"],
  },
  email_change_code: {
    subject: "Confirm your new email address for {product}",
    paragraphs: [
      "Enter this code to confirm your new email address for {product}:",
      "{code}",
      "The code expires in {expiresIn}.",
      "If you did not ask to change your email address, ignore this email: your account stays as it is.",
    ],
    required: ["code"],
  },
  email_change_requested: {
    subject: "A change of your {product} email address was requested",
    paragraphs: [
      "From a signed-in session of your {product} account, someone asked to change its email address.",
      "The requested new address is {email}.",
      "Nothing changes until the new address is confirmed with the code sent to it: until then, this address stays the one you sign in with.",
      "If you did not ask for this, change your password right away and sign out your other sessions.",
    ],
    required: [],
  },
  email_changed_notice: {
    subject: "Your {product} email address was changed",
    paragraphs: [
      "The email address of your {product} account was just changed.",
      "The new address is {email}.",
      "If you did not make this change, reset your password right away and contact support.",
    ],
    required: [],
  },
  password_changed_notice: {
    subject: "Your {product} password was changed",
    paragraphs: [
      "The password of your {product} account was just changed.",
      "If you made this change, there is nothing else to do.",
      "If you did not, reset your password right away and contact support.",
    ],
    required: [],
  },
  invitation: {
    subject: "You are invited to {product}",
    paragraphs: [
      "You have been invited to create an account on {product}. Open this link to accept the invitation:",
      "{link}",
      "The invitation expires in {expiresIn}.",
      "If you were not expecting this invitation, you can ignore this email.",
    ],
    required: ["link"],
  },
  trial_ended: {
    subject: "Your {product} trial has ended",
    paragraphs: [
      "Your trial of the {plan} plan on {product} has ended.",
      "Your account is now on the {freePlan} plan; everything you created is still there.",
      "To keep the features of {plan}, choose a subscription in your account.",
    ],
    required: ["plan"],
  },
  subscription_expired: {
    subject: "Your {product} subscription has ended",
    paragraphs: [
      "Your {plan} subscription on {product} has ended and was not renewed.",
      "Your account is now on the {freePlan} plan; everything you created is still there.",
      "To get {plan} back, subscribe again in your account.",
    ],
    required: ["plan"],
  },
  renewal_reminder: {
    subject: "Your {product} subscription renews on {date}",
    paragraphs: [
      "Your {plan} subscription on {product} renews on {date}.",
      "There is nothing to do to keep it. To change or cancel it, go to your account before that date.",
    ],
    required: ["plan", "date"],
  },
  second_factor_added: {
    subject: "A second factor was added to your {product} account",
    paragraphs: [
      "A second factor (an authenticator app or a passkey) was just added to your {product} account. Signing in now asks for it.",
      "If you made this change, there is nothing else to do.",
      "If you did not, reset your password right away and contact support.",
    ],
    required: [],
  },
  second_factor_removed: {
    subject: "A second factor was removed from your {product} account",
    paragraphs: [
      "A second factor (an authenticator app or a passkey) was just removed from your {product} account.",
      "If you made this change, or asked support to remove it, there is nothing else to do.",
      "If you did not, reset your password right away and contact support.",
    ],
    required: [],
  },
  recovery_code_used: {
    subject: "A recovery code was used to sign in to {product}",
    paragraphs: [
      "One of your recovery codes was just used to sign in to your {product} account. Each code works only once.",
      "If this was you, consider making new recovery codes in your account settings.",
      "If it was not, reset your password right away and contact support.",
    ],
    required: [],
  },
};

const fr: Table = {
  verify_email: {
    subject: "Confirmez votre adresse e-mail pour {product}",
    paragraphs: [
      "Bienvenue sur {product}. Pour terminer la création de votre compte, confirmez votre adresse e-mail en ouvrant ce lien :",
      "{link}",
      "Ce lien expire dans {expiresIn}.",
      "Si vous n’avez pas créé de compte, vous pouvez ignorer ce message.",
    ],
    required: ["link"],
  },
  phone_existing: {
    subject: "Quelqu’un a tenté d’ajouter votre numéro de téléphone à un autre compte {product}",
    paragraphs: [
      "Quelqu’un connecté à {product} a tenté d’ajouter à son compte un numéro de téléphone qui appartient au vôtre. Il n’a pas été ajouté : ce numéro reste le vôtre.",
      "Si c’était vous, avec un autre compte, connectez-vous plutôt avec celui-ci.",
      "Si ce n’était pas vous, vous pouvez ignorer ce message : votre compte n’a pas changé.",
    ],
    required: [],
  },
  signup_existing: {
    subject: "Quelqu’un a tenté de créer un compte {product} avec votre adresse",
    paragraphs: [
      "Quelqu’un a tenté de créer un compte {product} avec cette adresse e-mail, mais vous avez déjà un compte.",
      "Si c’était vous, connectez-vous ou réinitialisez votre mot de passe.",
      "Si ce n’était pas vous, vous pouvez ignorer ce message : votre compte n’a pas changé.",
    ],
    required: [],
  },
  password_reset: {
    subject: "Réinitialisez votre mot de passe {product}",
    paragraphs: [
      "Nous avons reçu une demande de réinitialisation du mot de passe de votre compte {product}.",
      "Pour choisir un nouveau mot de passe, ouvrez ce lien : {link}",
      "Code de réinitialisation : {code}",
      "Cette demande expire dans {expiresIn}.",
      "Si vous n’avez pas demandé à réinitialiser votre mot de passe, ignorez ce message : votre mot de passe reste le même.",
    ],
    required: ["link|code"],
  },
  email_change_code: {
    subject: "Confirmez votre nouvelle adresse e-mail pour {product}",
    paragraphs: [
      "Saisissez ce code pour confirmer votre nouvelle adresse e-mail sur {product} :",
      "{code}",
      "Le code expire dans {expiresIn}.",
      "Si vous n’avez pas demandé à changer d’adresse e-mail, ignorez ce message : votre compte reste inchangé.",
    ],
    required: ["code"],
  },
  email_change_requested: {
    subject: "Demande de changement de l’adresse e-mail de votre compte {product}",
    paragraphs: [
      "Depuis une session connectée à votre compte {product}, quelqu’un a demandé à changer son adresse e-mail.",
      "La nouvelle adresse demandée est {email}.",
      "Rien ne change tant que la nouvelle adresse n’est pas confirmée avec le code qui lui a été envoyé : d’ici là, vous continuez à vous connecter avec cette adresse.",
      "Si vous n’êtes pas à l’origine de cette demande, changez votre mot de passe immédiatement et fermez vos autres sessions.",
    ],
    required: [],
  },
  email_changed_notice: {
    subject: "L’adresse e-mail de votre compte {product} a été modifiée",
    paragraphs: [
      "L’adresse e-mail de votre compte {product} vient d’être modifiée.",
      "La nouvelle adresse est {email}.",
      "Si vous n’êtes pas à l’origine de ce changement, réinitialisez votre mot de passe immédiatement et contactez le support.",
    ],
    required: [],
  },
  password_changed_notice: {
    subject: "Le mot de passe de votre compte {product} a été modifié",
    paragraphs: [
      "Le mot de passe de votre compte {product} vient d’être modifié.",
      "Si c’est vous, vous n’avez rien d’autre à faire.",
      "Sinon, réinitialisez votre mot de passe immédiatement et contactez le support.",
    ],
    required: [],
  },
  invitation: {
    subject: "Vous êtes invité(e) sur {product}",
    paragraphs: [
      "Vous avez été invité(e) à créer un compte sur {product}. Ouvrez ce lien pour accepter l’invitation :",
      "{link}",
      "L’invitation expire dans {expiresIn}.",
      "Si vous n’attendiez pas cette invitation, vous pouvez ignorer ce message.",
    ],
    required: ["link"],
  },
  trial_ended: {
    subject: "Votre essai de {product} est terminé",
    paragraphs: [
      "Votre essai de l’offre {plan} sur {product} est terminé.",
      "Votre compte est maintenant sur l’offre {freePlan} ; tout ce que vous avez créé est conservé.",
      "Pour garder les fonctions de {plan}, choisissez un abonnement dans votre compte.",
    ],
    required: ["plan"],
  },
  subscription_expired: {
    subject: "Votre abonnement {product} est terminé",
    paragraphs: [
      "Votre abonnement {plan} sur {product} est arrivé à son terme sans être renouvelé.",
      "Votre compte est maintenant sur l’offre {freePlan} ; tout ce que vous avez créé est conservé.",
      "Pour retrouver {plan}, abonnez-vous à nouveau dans votre compte.",
    ],
    required: ["plan"],
  },
  renewal_reminder: {
    subject: "Votre abonnement {product} sera renouvelé le {date}",
    paragraphs: [
      "Votre abonnement {plan} sur {product} sera renouvelé le {date}.",
      "Vous n’avez rien à faire pour le garder. Pour le modifier ou le résilier, rendez-vous dans votre compte avant cette date.",
    ],
    required: ["plan", "date"],
  },
  second_factor_added: {
    subject: "Un second facteur a été ajouté à votre compte {product}",
    paragraphs: [
      "Un second facteur (une application d’authentification ou une clé d’accès) vient d’être ajouté à votre compte {product}. Il vous sera demandé à la connexion.",
      "Si c’est vous, vous n’avez rien d’autre à faire.",
      "Sinon, réinitialisez votre mot de passe immédiatement et contactez le support.",
    ],
    required: [],
  },
  second_factor_removed: {
    subject: "Un second facteur a été retiré de votre compte {product}",
    paragraphs: [
      "Un second facteur (une application d’authentification ou une clé d’accès) vient d’être retiré de votre compte {product}.",
      "Si c’est vous, ou si vous l’avez demandé au support, vous n’avez rien d’autre à faire.",
      "Sinon, réinitialisez votre mot de passe immédiatement et contactez le support.",
    ],
    required: [],
  },
  recovery_code_used: {
    subject: "Un code de secours a servi à vous connecter à {product}",
    paragraphs: [
      "Un de vos codes de secours vient de servir à vous connecter à votre compte {product}. Chaque code ne fonctionne qu’une fois.",
      "Si c’est vous, pensez à générer de nouveaux codes de secours dans les paramètres de votre compte.",
      "Sinon, réinitialisez votre mot de passe immédiatement et contactez le support.",
    ],
    required: [],
  },
};

/**
 * The built-in locales. Adding one is data: a file in ./locales/ (see de.ts),
 * a line here, and its code in SUPPORTED_LOCALES (src/domain/types.ts).
 */
const LOCALES: Record<Locale, LocaleStrings> = {
  en: {
    email: en,
    sms: smsEn,
    units: [
      [1440, "day", "days"],
      [60, "hour", "hours"],
      [1, "minute", "minutes"],
    ],
  },
  fr: {
    email: fr,
    sms: smsFr,
    units: [
      [1440, "jour", "jours"],
      [60, "heure", "heures"],
      [1, "minute", "minutes"],
    ],
  },
  de,
  es,
};

/** "24 hours" / "24 heures": the largest unit that divides the duration exactly. */
function humanDuration(minutes: number, locale: Locale): string {
  const whole = Math.ceil(minutes);
  const units = LOCALES[locale].units;
  for (const [size, one, many] of units) {
    if (whole % size === 0 && whole >= (size === 1440 ? 2 * size : size)) {
      const n = whole / size;
      return `${n} ${n === 1 ? one : many}`;
    }
  }
  return `${whole} ${units[2]![2]}`;
}

/** j***@example.com: enough for the owner to recognise, little for anyone else. */
function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at <= 0) return "***";
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** "fr-CA" → "fr"; anything unsupported → "en". */
function resolveLocale(locale: string): Locale {
  const base =
    String(locale ?? "")
      .toLowerCase()
      .split(/[-_]/)[0] ?? "";
  return Object.hasOwn(LOCALES, base) ? (base as Locale) : "en";
}

const PLACEHOLDER = /\{(\w+)\}/g;

/** Replaces placeholders; null when a value is missing (the paragraph is dropped). */
function fill(
  template: string,
  values: Record<string, string | undefined>,
  render: (name: string, value: string) => string,
  literal: (s: string) => string,
): string | null {
  let out = "";
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const value = values[match[1]!];
    if (value === undefined || value === "") return null;
    out += literal(template.slice(last, match.index)) + render(match[1]!, value);
    last = match.index + match[0].length;
  }
  return out + literal(template.slice(last));
}

function htmlValue(name: string, value: string): string {
  const escaped = escapeHtml(value);
  // Only web links become clickable; anything else (a javascript: URL) stays text.
  if (name === "link" && /^https?:\/\//i.test(value)) return `<a href="${escaped}">${escaped}</a>`;
  if (name === "code") return `<strong style="font-size:1.5em;letter-spacing:0.15em">${escaped}</strong>`;
  return escaped;
}

function checkRequired(payload: MessagePayload, required: string[]): Record<string, string> {
  const vars = payload.variables ?? {};
  for (const need of required) {
    if (!need.split("|").some((name) => vars[name])) throw new Error(`message "${payload.kind}" needs the variable ${need}`);
  }
  return vars;
}

/** The values a template may name: the payload's variables and what is derived from them. */
function templateValues(payload: Pick<MessagePayload, "variables">, locale: Locale, productName: string): Record<string, string | undefined> {
  const vars = payload.variables ?? {};
  const minutes = Number(vars.expiresInMinutes || vars.minutes);
  return {
    ...vars,
    product: productName,
    expiresIn: vars.expiresIn || (minutes > 0 ? humanDuration(minutes, locale) : undefined),
    email: vars.maskedEmail || (vars.newEmail ? maskEmail(vars.newEmail) : undefined),
  };
}

/** A tenant's own template (src/domain/message-templates.ts): checked when saved, so it always parses. */
export type TenantTemplate = Pick<StoredTemplate, "subject" | "textBody" | "htmlBody">;

function fillTenant(source: string, values: Record<string, string | undefined>, value: (v: string) => string): string {
  return parseTemplate(source)
    .map((part) => ("variable" in part ? value(values[part.variable] ?? "") : part.text))
    .join("");
}

/** Renders a tenant's template: values as they are in the subject and text, HTML-escaped in the HTML. */
function renderTenantTemplate(template: TenantTemplate, values: Record<string, string | undefined>, locale: Locale): RenderedMessage {
  const raw = (v: string) => v;
  const subject = fillTenant(template.subject, values, raw).replace(/[\r\n]+/g, " ");
  const text = fillTenant(template.textBody, values, raw);
  const html =
    template.htmlBody !== ""
      ? fillTenant(template.htmlBody, values, escapeHtml)
      : `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>` +
        `<body style="font-family:sans-serif;line-height:1.5">${text
          .split(/\n\s*\n/)
          .map((p) => `<p>${escapeHtml(p.trim()).replace(/\n/g, "<br>")}</p>`)
          .join("")}</body></html>`;
  return { subject, text, html };
}

/**
 * Renders an email: with `template` (a tenant's own, for this locale or one of
 * its fallbacks), else the built-in one of the payload's locale.
 */
export function renderMessage(payload: MessagePayload, context: { productName: string }, tenantTemplate?: TenantTemplate): RenderedMessage {
  const locale = resolveLocale(payload.locale);
  if (tenantTemplate) return renderTenantTemplate(tenantTemplate, templateValues(payload, locale, context.productName), locale);
  const table = LOCALES[locale].email;
  const template = Object.hasOwn(table, payload.kind) ? table[payload.kind as EmailMessageKind] : undefined;
  if (!template) throw new Error(`no template for message kind "${payload.kind}"`);
  checkRequired(payload, template.required);
  const values = templateValues(payload, locale, context.productName);
  const same = (s: string) => s;
  const raw = (_name: string, value: string) => value;
  // A subject is one header line: never let a value break it.
  const subject = (fill(template.subject, values, raw, same) ?? "").replace(/[\r\n]+/g, " ");
  const text = template.paragraphs.map((p) => fill(p, values, raw, same)).filter((p) => p !== null);
  const html = template.paragraphs.map((p) => fill(p, values, htmlValue, escapeHtml)).filter((p) => p !== null);
  return {
    subject,
    text: `${text.join("\n\n")}\n\n— ${context.productName}\n`,
    html:
      `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>` +
      `<body style="font-family:sans-serif;line-height:1.5">${html.map((p) => `<p>${p}</p>`).join("")}` +
      `<p>— ${escapeHtml(context.productName)}</p></body></html>`,
  };
}

/** The text of an SMS kind — `{code}` and its lifetime (`minutes`) as human text, or the tenant's own text — and the locale it is in. */
export function renderSms(payload: MessagePayload, context: { productName: string }, tenantTemplate?: TenantTemplate): { text: string; locale: Locale } {
  const locale = resolveLocale(payload.locale);
  if (tenantTemplate) {
    const text = renderTenantTemplate(tenantTemplate, templateValues(payload, locale, context.productName), locale).text;
    return { text: text.replace(/[\r\n]+/g, " "), locale };
  }
  const table = LOCALES[locale].sms;
  const template = Object.hasOwn(table, payload.kind) ? table[payload.kind as SmsMessageKind] : undefined;
  if (!template) throw new Error(`no SMS template for message kind "${payload.kind}"`);
  const vars = checkRequired(payload, template.required);
  const minutes = Number(vars.minutes);
  if (!(minutes > 0)) throw new Error(`message "${payload.kind}" needs a positive lifetime in minutes`);
  const values = { ...vars, product: context.productName, expiresIn: humanDuration(minutes, locale) };
  const text = fill(
    template.text,
    values,
    (_name, value) => value,
    (s) => s,
  );
  if (text === null) throw new Error(`message "${payload.kind}" is missing a variable`);
  // One line: a value never breaks the text into what looks like another message.
  return { text: text.replace(/[\r\n]+/g, " "), locale };
}

/** The renderer the domain's template previews use (src/domain/message-templates.ts). */
export function createMessageRenderer(context: { productName: string }): MessageRenderer {
  return {
    render(payload, template) {
      const message = { ...payload, to: "", locale: payload.locale as Locale } as MessagePayload;
      if (messageChannel(message.kind) === "sms") return { subject: "", text: renderSms(message, context, template).text, html: "" };
      return renderMessage(message, context, template);
    },
  };
}
