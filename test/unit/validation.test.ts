import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { checkNewPassword, normalizeEmail, parseLocale, PASSWORD_MAX_LENGTH } from "../../src/domain/validation.ts";

/** Runs fn, expects a DomainError invalid_argument naming `field`, and returns it. */
function invalid(field: string, fn: () => unknown): DomainError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, "expected an error").toBeInstanceOf(DomainError);
  const error = thrown as DomainError;
  expect(error.kind).toBe("invalid_argument");
  expect(error.fieldViolations).toHaveLength(1);
  expect(error.fieldViolations[0]?.field).toBe(field);
  expect(error.message).toContain(field);
  return error;
}

/** A deterministic "random" password of n characters from a wide alphabet (strong in zxcvbn's eyes). */
function strong(n: number, seed = 12345): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%&*+-=?@^_~";
  let state = seed;
  let out = "";
  for (let i = 0; i < n; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    out += alphabet[Math.floor((state / 2147483648) * alphabet.length)];
  }
  return out;
}

describe("normalizeEmail", () => {
  it("trims and lower-cases", () => {
    expect(normalizeEmail("email", "  Ann.Smith@Example.COM \t")).toBe("ann.smith@example.com");
  });

  it("applies NFKC (fullwidth letters become ASCII)", () => {
    expect(normalizeEmail("email", "ａｎｎ@example.com")).toBe("ann@example.com");
    expect(normalizeEmail("email", "ＡＮＮ@ＥＸＡＭＰＬＥ.ＣＯＭ")).toBe("ann@example.com");
  });

  it("is idempotent", () => {
    for (const raw of ["ａｎｎ@example.com", " Bob@Example.org", "Zoë@exämple.de"]) {
      const once = normalizeEmail("email", raw);
      expect(normalizeEmail("email", once)).toBe(once);
    }
  });

  it("accepts internationalised domains", () => {
    expect(normalizeEmail("email", "zoë@exämple.de")).toBe("zoë@exämple.de");
  });

  it.each([
    ["empty", ""],
    ["blank", "   "],
    ["no @", "bad"],
    ["no dot in domain", "a@b"],
    ["space in local part", "a b@example.com"],
    ["two @", "a@b@example.com"],
    ["empty local part", "@example.com"],
    ["300 characters", `${"a".repeat(288)}@example.com`],
    ["255 characters", `${"a".repeat(243)}@example.com`],
  ])("rejects %s", (_name, raw) => {
    invalid("new_email", () => normalizeEmail("new_email", raw));
  });

  // "no spaces or controls": invisible characters would let "ann\u200b@example.com"
  // register as an account distinct from, yet indistinguishable from, ann@example.com.
  it.each([
    ["NUL", "a\u0000b@example.com"],
    ["BEL", "a\u0007@example.com"],
    ["DEL", "a\u007fb@example.com"],
    ["zero-width space", "ann\u200b@example.com"],
    ["right-to-left override", "ann\u202egro@example.com"],
    ["soft hyphen", "ann\u00ad@example.com"],
    ["byte order mark inside", "ann\ufeff@example.com"],
  ])("rejects a %s in the address", (_name, raw) => {
    invalid("email", () => normalizeEmail("email", raw));
  });

  it("strips a leading byte order mark like other surrounding whitespace", () => {
    expect(normalizeEmail("email", "\ufeffann@example.com")).toBe("ann@example.com");
  });

  it("accepts exactly 254 characters", () => {
    const email = `${"a".repeat(242)}@example.com`;
    expect(email).toHaveLength(254);
    expect(normalizeEmail("email", email)).toBe(email);
  });

  it("names the field passed in the error", () => {
    const error = invalid("request.email", () => normalizeEmail("request.email", "bad"));
    expect(error.reason).toBe("INVALID_ARGUMENT");
  });
});

describe("parseLocale", () => {
  it("returns the fallback for an empty value", () => {
    expect(parseLocale("locale", "", "fr")).toBe("fr");
    expect(parseLocale("locale", "", "en")).toBe("en");
  });

  it("keeps the language of a tag, case-insensitively", () => {
    expect(parseLocale("locale", "fr-CA", "en")).toBe("fr");
    expect(parseLocale("locale", "fr_FR", "en")).toBe("fr");
    expect(parseLocale("locale", "EN", "fr")).toBe("en");
    expect(parseLocale("locale", "en-GB", "fr")).toBe("en");
  });

  it("refuses unsupported locales, naming the field", () => {
    invalid("locale", () => parseLocale("locale", "it", "en"));
    invalid("profile.locale", () => parseLocale("profile.locale", "english", "en"));
  });
});

describe("checkNewPassword", () => {
  it('accepts "correct horse battery staple" with a minimum of 12', () => {
    expect(checkNewPassword("password", "correct horse battery staple", 12)).toBe("correct horse battery staple");
  });

  it("returns the NFKC form", () => {
    const raw = "ﬁsh ＴＡＣＯ ｇｒａｖｅｌ lamp";
    expect(checkNewPassword("password", raw, 12)).toBe("fish TACO gravel lamp");
    expect(checkNewPassword("password", raw, 12)).toBe(raw.normalize("NFKC"));
  });

  it("counts the minimum length in code points, not UTF-16 units", () => {
    const emoji = "🦊🍕🚀🎸🌵🐙🎲🧲🪁🦉🍉🛸";
    expect(emoji).toHaveLength(24); // UTF-16 units
    expect(checkNewPassword("password", emoji, 12)).toBe(emoji);
    const error = invalid("password", () => checkNewPassword("password", emoji, 13));
    expect(error.reason).toBe("PASSWORD_TOO_SHORT");
    const eleven = [...emoji].slice(0, 11).join("");
    expect(invalid("password", () => checkNewPassword("password", eleven, 12)).reason).toBe("PASSWORD_TOO_SHORT");
  });

  it(`allows exactly ${PASSWORD_MAX_LENGTH} characters and refuses ${PASSWORD_MAX_LENGTH + 1}`, () => {
    expect(PASSWORD_MAX_LENGTH).toBe(1024);
    const max = strong(1024);
    expect(checkNewPassword("password", max, 12)).toBe(max);
    expect(invalid("password", () => checkNewPassword("password", `${max}x`, 12)).reason).toBe("PASSWORD_TOO_LONG");
  });

  it("counts the maximum length in code points too", () => {
    const pool = [..."🦊🍕🚀🎸🌵🐙🎲🧲🪁🦉🍉🛸🐢🍄🧀🎻"];
    const symbols = (n: number) => Array.from({ length: n }, (_, i) => pool[(i * 7 + Math.floor(i / 3)) % pool.length]).join("");
    const max = symbols(1024); // 2048 UTF-16 units
    expect(checkNewPassword("password", max, 12)).toBe(max);
    expect(invalid("password", () => checkNewPassword("password", symbols(1025), 12)).reason).toBe("PASSWORD_TOO_LONG");
  });

  it("refuses a 10 KB password quickly", () => {
    const started = performance.now();
    expect(invalid("password", () => checkNewPassword("password", strong(10 * 1024), 12)).reason).toBe("PASSWORD_TOO_LONG");
    expect(invalid("password", () => checkNewPassword("password", "x".repeat(10 * 1024 * 1024), 12)).reason).toBe("PASSWORD_TOO_LONG");
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("refuses an empty password", () => {
    expect(invalid("password", () => checkNewPassword("password", "", 12)).reason).toBe("PASSWORD_REQUIRED");
    expect(invalid("password", () => checkNewPassword("password", "", 0)).reason).toBe("PASSWORD_REQUIRED");
  });

  it('refuses "password1234" as common or weak', () => {
    const error = invalid("new_password", () => checkNewPassword("new_password", "password1234", 12));
    expect(["PASSWORD_COMMON", "PASSWORD_WEAK"]).toContain(error.reason);
  });

  it("refuses common passwords case-insensitively", () => {
    const error = invalid("password", () => checkNewPassword("password", "PASSWORD1234", 8));
    expect(["PASSWORD_COMMON", "PASSWORD_WEAK"]).toContain(error.reason);
  });

  it("refuses a long but guessable password as weak", () => {
    expect(invalid("password", () => checkNewPassword("password", "aaaaaaaaaaaaaaaa", 12)).reason).toBe("PASSWORD_WEAK");
  });

  it("treats user inputs (e.g. the email) as guessable", () => {
    const email = "ann.example.smith@example.com";
    expect(checkNewPassword("password", email, 12)).toBe(email);
    expect(invalid("password", () => checkNewPassword("password", email, 12, [email])).reason).toBe("PASSWORD_WEAK");
  });

  it("never truncates", () => {
    const base = strong(99);
    const a = checkNewPassword("password", `${base}A`, 12);
    const b = checkNewPassword("password", `${base}B`, 12);
    expect(a).toHaveLength(100);
    expect(b).toHaveLength(100);
    expect(a).not.toBe(b);
    const long = strong(1000, 7);
    const c = checkNewPassword("password", `${long}1`, 12);
    const d = checkNewPassword("password", `${long}2`, 12);
    expect(c).not.toBe(d);
    expect(c).toBe(`${long}1`);
  });
});
