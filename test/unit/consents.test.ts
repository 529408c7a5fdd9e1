// The consent rules without a server: which purposes and versions pass, how
// refusals name their fields, and how the client is written down.
import { describe, expect, it } from "vitest";
import { checkConsentGrants, CONSENT_LIMITS, consentClient } from "../../src/domain/consents.ts";
import { DomainError } from "../../src/domain/errors.ts";

const grant = (purpose: string, version = "v1", granted = true) => ({ purpose, version, granted });

function fieldsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).kind).toBe("invalid_argument");
    return (error as DomainError).fieldViolations.map((v) => v.field);
  }
  throw new Error("expected a refusal");
}

describe("checkConsentGrants", () => {
  it("accepts the well-known purposes and a tenant's own names, keeping only purpose, version and granted", () => {
    const input = [
      grant("terms"),
      grant("privacy_policy", "2030-01"),
      grant("marketing", "m.1", false),
      grant("analytics", "tos:7"),
      grant("shop.news-letter_2", "x".repeat(64)),
    ];
    expect(
      checkConsentGrants(
        "consents",
        input.map((g) => ({ ...g, extra: "dropped" })),
      ),
    ).toEqual(input);
    expect(checkConsentGrants("consents", [])).toEqual([]);
    expect(checkConsentGrants("consents", [grant("p".repeat(64))])).toHaveLength(1);
  });

  it("names every offending field at once", () => {
    expect(
      fieldsOf(() =>
        checkConsentGrants("consents", [
          grant("terms"),
          grant("Terms"),
          grant("a b", "has space"),
          grant("", ""),
          grant("é"),
          grant("p".repeat(65), "v".repeat(65)),
        ]),
      ),
    ).toEqual([
      "consents[1].purpose",
      "consents[2].purpose",
      "consents[2].version",
      "consents[3].purpose",
      "consents[3].version",
      "consents[4].purpose",
      "consents[5].purpose",
      "consents[5].version",
    ]);
    expect(fieldsOf(() => checkConsentGrants("consents", [grant("terms", "v1"), grant("terms", "v2", false)]))).toEqual(["consents[1].purpose"]);
    expect(fieldsOf(() => checkConsentGrants("consents", [grant("terms", "v\u00e91")]))).toEqual(["consents[0].version"]);
  });

  it("refuses more than the per-call limit on the list itself", () => {
    const many = Array.from({ length: CONSENT_LIMITS.perCall + 1 }, (_, i) => grant(`p${i}`));
    expect(fieldsOf(() => checkConsentGrants("consents", many))).toEqual(["consents"]);
    expect(checkConsentGrants("consents", many.slice(1))).toHaveLength(CONSENT_LIMITS.perCall);
  });
});

describe("consentClient", () => {
  it("keeps the user agent, cut to 200 code points, with lone surrogates replaced", () => {
    expect(consentClient("MyApp/3.2 (iOS 19)")).toBe("MyApp/3.2 (iOS 19)");
    expect(consentClient("😀".repeat(300))).toBe("😀".repeat(200));
    expect(consentClient("a\uD800b\uDC00")).toBe("a\uFFFDb\uFFFD");
    expect(consentClient("")).toBe("");
  });
});
