import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { checkTemplate, parseTemplate, TEMPLATE_VARIABLES, TemplateSyntaxError } from "../../src/domain/message-templates.ts";
import { MessageKind } from "../../src/domain/messages.ts";

function violations(run: () => void): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof DomainError) return error.fieldViolations.map((v) => `${v.field}: ${v.description}`);
    throw error;
  }
  return [];
}

describe("parseTemplate", () => {
  it("splits text and {{variables}}, spaces allowed inside the braces", () => {
    expect(parseTemplate("a {{ link }}b{{code}}")).toEqual([{ text: "a " }, { variable: "link" }, { text: "b" }, { variable: "code" }]);
    expect(parseTemplate("single { braces } stay")).toEqual([{ text: "single { braces } stay" }]);
  });

  it("refuses an unclosed or malformed placeholder, saying where", () => {
    expect(() => parseTemplate("x {{link")).toThrow(new TemplateSyntaxError('has an unclosed "{{" at character 3'));
    expect(() => parseTemplate("{{a b}}")).toThrow(TemplateSyntaxError);
    expect(() => parseTemplate("{{}}")).toThrow(TemplateSyntaxError);
  });
});

describe("checkTemplate", () => {
  it("accepts every kind's variables, and names every broken field", () => {
    for (const kind of Object.values(MessageKind)) {
      const all = TEMPLATE_VARIABLES[kind].variables.map((v) => `{{${v}}}`).join(" ");
      const sms = kind === MessageKind.PHONE_CODE;
      expect(violations(() => checkTemplate(kind, { subject: sms ? "" : all, textBody: all, htmlBody: sms ? "" : all }))).toEqual([]);
    }
    expect(violations(() => checkTemplate(MessageKind.INVITATION, { subject: "{{code}}", textBody: "no link", htmlBody: "{{link" }))).toEqual([
      "subject: uses the unknown variable {{code}}; invitation has product, link, expiresIn",
      "text_body: must use {{link}}",
      'html_body: has an unclosed "{{" at character 1',
    ]);
  });
});
