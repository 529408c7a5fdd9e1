import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { isSupportedPhoneRegion, normalizePhone } from "../../src/domain/phone.ts";

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
  expect(error.fieldViolations.map((v) => v.field)).toEqual([field]);
  return error;
}

describe("normalizePhone", () => {
  it("keeps E.164 and strips the separators people type", () => {
    expect(normalizePhone("+33612345678")).toBe("+33612345678");
    expect(normalizePhone(" +33 6 12 34 56 78 ")).toBe("+33612345678");
    expect(normalizePhone("+1 (415) 555-2671")).toBe("+14155552671");
    expect(normalizePhone("+44.7400.123456")).toBe("+447400123456");
  });

  it("reads an MSISDN without the plus (Webcom) as international", () => {
    expect(normalizePhone("33612345678")).toBe("+33612345678");
    expect(normalizePhone("14155552671")).toBe("+14155552671");
    // A default region does not hide it when the digits are not a national number there.
    expect(normalizePhone("33612345678", "FR")).toBe("+33612345678");
    expect(normalizePhone("447400123456", "FR")).toBe("+447400123456");
  });

  it("reads national input in the default region", () => {
    expect(normalizePhone("06 12 34 56 78", "FR")).toBe("+33612345678");
    expect(normalizePhone("(415) 555-2671", "US")).toBe("+14155552671");
    expect(normalizePhone("07400 123456", "gb")).toBe("+447400123456");
    // The region's international prefix is understood too.
    expect(normalizePhone("0044 7400 123456", "FR")).toBe("+447400123456");
  });

  it("refuses national input without a default region, and an unknown region", () => {
    invalid("phone", () => normalizePhone("0612345678"));
    invalid("phone", () => normalizePhone("0612345678", "XX"));
    expect(isSupportedPhoneRegion("FR")).toBe(true);
    expect(isSupportedPhoneRegion("fr")).toBe(true);
    expect(isSupportedPhoneRegion("XX")).toBe(false);
    expect(isSupportedPhoneRegion("FRA")).toBe(false);
  });

  it("refuses what is not a valid number, naming the field", () => {
    expect(invalid("phone", () => normalizePhone("")).reason).toBe("PHONE_REQUIRED");
    expect(invalid("phone", () => normalizePhone("   ")).reason).toBe("PHONE_REQUIRED");
    for (const bad of [
      "+3361234", // too short for France
      "+33012345678", // not allocated in France's plan
      "+999123456789", // no such country code
      "call +33612345678",
      "+33612345678 ext. 12",
      "+33612345678;ext=12",
      "++33612345678",
      "+33-6-12-34-56-78-90-12-34-56-78-90-12-34-56",
      "1".repeat(10_000),
      "٠٦١٢٣٤٥٦٧٨",
    ]) {
      expect(invalid("phone", () => normalizePhone(bad, "FR")).reason, bad).toBe("PHONE_INVALID");
    }
  });

  it("names the field it is given", () => {
    invalid("new_phone", () => normalizePhone("nope", "FR", "new_phone"));
  });

  it("accepts full-width digits (NFKC)", () => {
    expect(normalizePhone("＋３３６１２３４５６７８")).toBe("+33612345678");
  });
});
