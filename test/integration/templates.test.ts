// A tenant's own message templates through the running service and its real
// SMTP server: a French override is what a French sign-up receives (values
// escaped in its HTML); the locale chain falls back to the tenant's default,
// then English, then the built-in messages (German and Spanish ship beside
// English and French); broken templates are refused when saved; a preview
// renders with sample values.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `tpl.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const FRENCH = {
  kind: "verify_email",
  locale: "fr",
  subject: "Bienvenue chez {{product}} : confirmez votre adresse",
  textBody: "Bonjour !\n\nConfirmez votre adresse ici : {{link}}\n\nLe lien expire dans {{expiresIn}}.",
  htmlBody: '<p>Bonjour !</p><p><a href="{{link}}">Confirmer mon adresse</a> (expire dans {{expiresIn}})</p>',
};

describe.each(BACKENDS)("message templates on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let root: Record<string, string>;

  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("connect-json-h1", server.baseUrl);
    const rootEmail = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } });
    root = bearer(signedIn.sessionToken);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  const tenant = async (name: string, defaultLocale = "en") =>
    (await api.call(AdminService.method.createTenant, { name, settings: { defaultLocale } }, root)).tenant!.id;
  const signUp = async (tenantId: string, tag: string, locale: string) => {
    const email = uniqueEmail(tag);
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale }, { "x-tenant-id": tenantId });
    return server.waitForMail(email);
  };

  it("a tenant's French template is what a French sign-up receives, through the real SMTP server; others keep the built-in", async () => {
    const shop = await tenant("Boutique");
    const saved = await api.call(AdminService.method.setMessageTemplate, { ...FRENCH, tenantId: shop }, root);
    expect(saved.template).toMatchObject({ ...FRENCH, tenantId: shop });

    const mail = await signUp(shop, "fr", "fr");
    expect(mail.subject).toBe("Bienvenue chez Identity : confirmez votre adresse");
    const token = linkToken(mail.text);
    expect(mail.text).toContain("Bonjour !");
    expect(mail.text).toContain("Le lien expire dans 24 heures.");
    expect(mail.html).toMatch(new RegExp(`<a href="https://app\\.example\\.test/[a-z/]*verify-email\\?token=${token}">Confirmer mon adresse</a>`));
    // The link works: the template carried the real one.
    await api.call(IdentityService.method.verifyIdentity, { token }, { "x-tenant-id": shop });

    // Another tenant, and an English sign-up here, get the built-in messages.
    expect((await signUp(shop, "en", "en")).subject).toBe("Confirm your email address for Identity");
    expect((await signUp(await tenant("Other"), "other-fr", "fr")).subject).toBe("Confirmez votre adresse e-mail pour Identity");

    const listed = await api.call(AdminService.method.listMessageTemplates, { tenantId: shop }, root);
    expect(listed.templates.map((t) => [t.kind, t.locale])).toEqual([["verify_email", "fr"]]);
    const audit = await server.runtime.app.audit.list({ tenantId: shop, pageSize: 100, pageToken: "", action: "template.set" });
    expect(audit.events.map((e) => e.target)).toEqual(["template:verify_email/fr"]);
  });

  it("a tenant's own second-factor notice replaces the built-in one", async () => {
    const shop = await tenant("Atelier");
    const own = { kind: "second_factor_added", locale: "fr", subject: "{{product}} : nouveau facteur", textBody: "Un facteur a été ajouté sur {{product}}." };
    await api.call(AdminService.method.setMessageTemplate, { ...own, tenantId: shop }, root);
    const email = uniqueEmail("mfa-notice");
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "fr" }, { "x-tenant-id": shop });
    const { sessionToken } = await api.call(
      IdentityService.method.verifyIdentity,
      { token: linkToken((await server.waitForMail(email)).text) },
      { "x-tenant-id": shop },
    );
    const auth = { ...bearer(sessionToken), "x-tenant-id": shop };
    const started = await api.call(AccountService.method.startTotpEnrollment, {}, auth);
    await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, auth);
    const mail = await server.waitForMail(email, (m) => m.subject === "Identity : nouveau facteur");
    expect(mail.text).toContain("Un facteur a été ajouté sur Identity.");
  });

  it("follows the locale chain: the message's locale, the tenant's default, English, then the built-in (de and es ship)", async () => {
    const shop = await tenant("Chain", "fr");
    // Nothing of the tenant's: the built-in message in the person's language.
    expect((await signUp(shop, "de", "de")).subject).toBe("Bestätigen Sie Ihre E-Mail-Adresse für Identity");
    expect((await signUp(shop, "es", "es")).subject).toBe("Confirma tu dirección de correo para Identity");

    // An English template only: every language falls back to it.
    await api.call(AdminService.method.setMessageTemplate, { ...FRENCH, locale: "en", subject: "Welcome to {{product}}", tenantId: shop }, root);
    expect((await signUp(shop, "de-en", "de")).subject).toBe("Welcome to Identity");
    // The tenant's default (fr) comes before English.
    await api.call(AdminService.method.setMessageTemplate, { ...FRENCH, tenantId: shop }, root);
    expect((await signUp(shop, "de-fr", "de")).subject).toBe("Bienvenue chez Identity : confirmez votre adresse");
    // The person's own language first.
    await api.call(AdminService.method.setMessageTemplate, { ...FRENCH, locale: "de", subject: "Willkommen bei {{product}}", tenantId: shop }, root);
    expect((await signUp(shop, "de-de", "de")).subject).toBe("Willkommen bei Identity");

    // Deleted, the fallback takes over again.
    await api.call(AdminService.method.deleteMessageTemplate, { kind: "verify_email", locale: "de", tenantId: shop }, root);
    expect((await signUp(shop, "de-after", "de")).subject).toBe("Bienvenue chez Identity : confirmez votre adresse");
    expect((await refusal(api.call(AdminService.method.getMessageTemplate, { kind: "verify_email", locale: "de", tenantId: shop }, root))).code).toBe(
      Code.NotFound,
    );
  });

  it("refuses broken templates when saved, naming the field and the variable", async () => {
    const shop = await tenant("Broken");
    const set = (fields: Partial<typeof FRENCH>) => refusal(api.call(AdminService.method.setMessageTemplate, { ...FRENCH, ...fields, tenantId: shop }, root));
    const unclosed = await set({ textBody: "Open {{link" });
    expect(unclosed.code).toBe(Code.InvalidArgument);
    expect(unclosed.rawMessage).toContain('text_body: has an unclosed "{{"');
    const unknown = await set({ htmlBody: "<p>{{link}} {{password}}</p>" });
    expect(unknown.rawMessage).toContain("html_body: uses the unknown variable {{password}}");
    const missing = await set({ textBody: "No link here" });
    expect(missing.rawMessage).toContain("text_body: must use {{link}}");
    expect((await set({ subject: "Two\nlines" })).rawMessage).toContain("subject: must be one line");
    expect((await set({ kind: "no_such_kind" })).rawMessage).toContain("kind");
    expect((await set({ locale: "it" })).rawMessage).toContain("locale");
    // Nothing was saved.
    expect((await api.call(AdminService.method.listMessageTemplates, { tenantId: shop }, root)).templates).toEqual([]);
    // An SMS has a text and nothing else.
    const sms = await refusal(
      api.call(AdminService.method.setMessageTemplate, { kind: "phone_code", locale: "en", subject: "x", textBody: "{{code}}", tenantId: shop }, root),
    );
    expect(sms.rawMessage).toContain("subject: must be empty for an SMS");
    await api.call(AdminService.method.setMessageTemplate, { kind: "phone_code", locale: "en", textBody: "{{product}}: {{code}}", tenantId: shop }, root);
  });

  it("previews a draft, the tenant's template or the built-in one with sample values, escaping values in HTML", async () => {
    const shop = await tenant("Preview");
    const builtIn = await api.call(AdminService.method.previewMessageTemplate, { kind: "password_reset", locale: "es", tenantId: shop }, root);
    expect(builtIn).toMatchObject({ source: "built_in", subject: "Restablece tu contraseña de Identity" });
    expect(builtIn.textBody).toContain("https://app.example.com/verify-email?token=SAMPLE-TOKEN");

    const draft = await api.call(
      AdminService.method.previewMessageTemplate,
      {
        kind: "email_changed_notice",
        locale: "en",
        draft: { subject: "Changed", textBody: "New: {{email}}", htmlBody: "<b>{{email}}</b> {{product}}" },
        tenantId: shop,
      },
      root,
    );
    expect(draft).toMatchObject({ source: "draft", subject: "Changed", textBody: "New: j***@example.com", htmlBody: "<b>j***@example.com</b> Identity" });

    await api.call(AdminService.method.setMessageTemplate, { ...FRENCH, tenantId: shop }, root);
    const saved = await api.call(AdminService.method.previewMessageTemplate, { kind: "verify_email", locale: "fr", tenantId: shop }, root);
    expect(saved.source).toBe("tenant");
    expect(saved.htmlBody).toContain('<a href="https://app.example.com/verify-email?token=SAMPLE-TOKEN">');

    const broken = await refusal(
      api.call(
        AdminService.method.previewMessageTemplate,
        { kind: "verify_email", locale: "en", draft: { subject: "x", textBody: "{{nope}}", htmlBody: "" }, tenantId: shop },
        root,
      ),
    );
    expect(broken.code).toBe(Code.InvalidArgument);
  });
});
