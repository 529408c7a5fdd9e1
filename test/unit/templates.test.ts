import { describe, expect, it } from "vitest";
import { renderMessage, renderSms } from "../../src/delivery/templates.ts";
import { type EmailMessageKind, MessageKind, type MessagePayload, messageChannel } from "../../src/domain/messages.ts";
import { SUPPORTED_LOCALES, type Locale } from "../../src/domain/types.ts";

const variables = {
  link: "https://id.example.com/verify?t=abc123",
  code: "482913",
  newEmail: "jane.doe@example.org",
  expiresInMinutes: "1440",
  plan: "Pro",
  freePlan: "Free",
  date: "2027-01-31",
};

function payload(kind: MessageKind, locale: string, vars: Record<string, string> = variables): MessagePayload {
  return { kind, to: "jane@example.com", locale: locale as Locale, variables: vars };
}

const context = { productName: "Acme ID" };

/** What each kind must show the reader. */
const expected: Record<EmailMessageKind, string[]> = {
  verify_email: [variables.link],
  signup_existing: [],
  phone_existing: [],
  password_reset: [variables.link, variables.code],
  email_change_code: [variables.code],
  email_change_requested: ["j***@example.org"],
  email_changed_notice: ["j***@example.org"],
  password_changed_notice: [],
  invitation: [variables.link],
  trial_ended: ["Pro", "Free"],
  subscription_expired: ["Pro", "Free"],
  renewal_reminder: ["Pro", "2027-01-31"],
  second_factor_added: [],
  second_factor_removed: [],
  recovery_code_used: [],
};

const emailKinds = Object.values(MessageKind).filter((kind): kind is EmailMessageKind => messageChannel(kind) === "email");

describe("renderMessage", () => {
  for (const kind of emailKinds) {
    for (const locale of SUPPORTED_LOCALES) {
      it(`renders ${kind} in ${locale}`, () => {
        const m = renderMessage(payload(kind, locale), context);
        expect(m.subject.trim()).not.toBe("");
        expect(m.text.trim()).not.toBe("");
        expect(m.html).toContain("<p>");
        expect(m.subject).toContain("Acme ID");
        expect(m.html).toContain(`lang="${locale}"`);
        for (const value of expected[kind]) {
          expect(m.text).toContain(value);
          expect(m.html).toContain(value);
        }
        expect(m.text).not.toMatch(/\{\w+\}/); // no placeholder left behind
        expect(m.html).not.toContain("newEmail");
      });
    }
  }

  it("links are clickable in HTML and expiry is human text", () => {
    const en = renderMessage(payload("verify_email", "en"), context);
    expect(en.html).toContain(`<a href="${variables.link}">`);
    expect(en.text).toContain("24 hours");
    const fr = renderMessage(payload("verify_email", "fr"), context);
    expect(fr.text).toContain("24 heures");
    expect(renderMessage(payload("invitation", "en", { link: variables.link, expiresIn: "7 days" }), context).text).toContain("7 days");
    expect(renderMessage(payload("password_reset", "en", { link: variables.link, expiresInMinutes: "60" }), context).text).toContain("1 hour");
  });

  it("says what to do when the person did not ask", () => {
    expect(renderMessage(payload("signup_existing", "en"), context).text).toMatch(/if it was you, sign in or reset your password/i);
    expect(renderMessage(payload("password_reset", "en"), context).text).toMatch(/if you did not ask/i);
    expect(renderMessage(payload("signup_existing", "fr"), context).text).toMatch(/connectez-vous ou réinitialisez/);
  });

  it("escapes variables in HTML", () => {
    const evil = "<script>alert(1)</script>";
    for (const kind of emailKinds) {
      const m = renderMessage(
        payload(kind, "en", {
          link: `https://x.test/?q=${evil}`,
          code: evil,
          newEmail: `${evil}@x.test`,
          maskedEmail: evil,
          expiresIn: evil,
          plan: evil,
          date: evil,
        }),
        { productName: evil },
      );
      expect(m.html).not.toContain("<script>");
      expect(m.html).toContain("&#60;script&#62;");
    }
  });

  it("does not make a javascript: link clickable", () => {
    const m = renderMessage(payload("verify_email", "en", { link: "javascript:alert(1)" }), context);
    expect(m.html).not.toContain("href=");
  });

  it("keeps the subject on one line", () => {
    const m = renderMessage(payload("verify_email", "en"), { productName: "Acme\r\nBcc: x@y.z" });
    expect(m.subject).not.toMatch(/[\r\n]/);
  });

  it("falls back to English for an unknown locale, and uses the base language of a regional one", () => {
    const en = renderMessage(payload("verify_email", "en"), context);
    expect(renderMessage(payload("verify_email", "it"), context)).toEqual(en);
    expect(renderMessage(payload("verify_email", ""), context)).toEqual(en);
    expect(renderMessage(payload("verify_email", "fr-CA"), context)).toEqual(renderMessage(payload("verify_email", "fr"), context));
  });

  it("leaves out a paragraph whose optional value is missing", () => {
    const m = renderMessage(payload("verify_email", "en", { link: variables.link }), context);
    expect(m.text).not.toMatch(/expires/);
    const codeOnly = renderMessage(payload("password_reset", "en", { code: "123456" }), context);
    expect(codeOnly.text).toContain("123456");
    expect(codeOnly.text).not.toMatch(/open this link/);
    const notice = renderMessage(payload("email_changed_notice", "en", {}), context);
    expect(notice.text).toMatch(/was just changed/);
    expect(notice.text).not.toMatch(/new address/);
    const requested = renderMessage(payload("email_change_requested", "en", {}), context);
    expect(requested.text).toMatch(/asked to change its email address/);
    expect(requested.text).not.toMatch(/requested new address/);
  });

  it("refuses a message without its link or code, or of an unknown kind", () => {
    expect(() => renderMessage(payload("verify_email", "en", {}), context)).toThrow(/link/);
    expect(() => renderMessage(payload("email_change_code", "en", { link: "https://x" }), context)).toThrow(/code/);
    expect(() => renderMessage(payload("nope" as MessageKind, "en"), context)).toThrow(/kind/);
    expect(() => renderMessage(payload("constructor" as MessageKind, "en"), context)).toThrow(/kind/);
    expect(() => renderMessage(payload("phone_code", "en"), context)).toThrow(/kind/);
  });
});

// GSM 03.38 basic set: a text made only of these fits 160 characters per SMS (any other turns it into UCS-2, 70).
const GSM7 = /^[@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&'()*+,\-./0-9:;<=>?¡A-ZÄÖÑÜ§¿a-zäöñüà]*$/;

describe("renderSms", () => {
  const sms = (locale: string, vars: Record<string, string>) =>
    renderSms({ kind: MessageKind.PHONE_CODE, to: "+33612345678", locale: locale as Locale, variables: vars }, context).text;

  it("only SMS kinds go on the sms channel", () => {
    expect(messageChannel(MessageKind.PHONE_CODE)).toBe("sms");
    expect(emailKinds).not.toContain(MessageKind.PHONE_CODE);
    expect(emailKinds.length).toBe(Object.values(MessageKind).length - 1);
  });

  it("renders the code and its lifetime in en and fr, in one GSM-7 SMS, with no link", () => {
    const en = sms("en", { code: "482913", minutes: "5" });
    expect(en).toBe("482913 is your Acme ID code. It expires in 5 minutes. Do not share it with anyone.");
    const fr = sms("fr", { code: "482913", minutes: "10" });
    expect(fr).toBe("482913 est votre code Acme ID. Il expire dans 10 minutes. Ne le communiquez à personne.");
    expect(sms("fr-CA", { code: "000111", minutes: "1" })).toContain("1 minute.");
    expect(renderSms({ kind: "phone_code", to: "+33612345678", locale: "fr-CA" as Locale, variables: { code: "1", minutes: "5" } }, context).locale).toBe("fr");
    expect(sms("it", { code: "000111", minutes: "60" })).toContain("expires in 1 hour.");
    for (const text of [en, fr]) {
      expect(text.length).toBeLessThanOrEqual(160);
      expect(text).toMatch(GSM7);
      expect(text).not.toMatch(/https?:|\{\w+\}/);
    }
  });

  it("refuses an SMS without its code or lifetime, or of an email kind", () => {
    expect(() => sms("en", { minutes: "5" })).toThrow(/code/);
    expect(() => sms("en", { code: "123456" })).toThrow(/minutes/);
    expect(() => sms("en", { code: "123456", minutes: "soon" })).toThrow(/minutes/);
    expect(() => renderSms(payload("verify_email", "en"), context)).toThrow(/kind/);
  });

  it("keeps the text on one line", () => {
    expect(
      renderSms({ kind: "phone_code", to: "+33612345678", locale: "en", variables: { code: "1\n2", minutes: "5" } }, { productName: "A\r\nB" }).text,
    ).not.toMatch(/[\r\n]/);
  });
});

describe("a tenant's own template", () => {
  const tenant = { subject: "Hi {{product}}\r\nBcc: x@y.z", textBody: "Open {{link}}", htmlBody: '<p><a href="{{link}}">{{link}}</a></p>' };

  it("escapes values in the HTML, keeps the template's markup, and keeps the subject on one line", () => {
    const m = renderMessage(payload("verify_email", "fr", { link: 'https://x.test/?a=1&b="<script>' }), context, tenant);
    expect(m.html).toBe('<p><a href="https://x.test/?a=1&#38;b=&#34;&#60;script&#62;">https://x.test/?a=1&#38;b=&#34;&#60;script&#62;</a></p>');
    expect(m.text).toBe('Open https://x.test/?a=1&b="<script>');
    expect(m.subject).toBe("Hi Acme ID Bcc: x@y.z");
  });

  it("makes the HTML from the text when it has none", () => {
    const m = renderMessage(payload("verify_email", "en"), context, { subject: "S", textBody: "One <b>\n\nTwo {{expiresIn}}", htmlBody: "" });
    expect(m.html).toContain("<p>One &#60;b&#62;</p><p>Two 24 hours</p>");
  });

  it("renders an SMS text from the tenant's template, on one line", () => {
    expect(
      renderSms(payload("phone_code", "de", { code: "123456", minutes: "10" }), context, { subject: "", textBody: "{{code}}\n{{expiresIn}}", htmlBody: "" }),
    ).toEqual({ text: "123456 10 Minuten", locale: "de" });
  });
});
