// Second-factor rules without I/O: TOTP per RFC 6238 (its test vector), which
// steps are compared, and how a typed recovery code is read.
import { describe, expect, it } from "vitest";
import { totpCode, totpMatchingSteps, totpSecretBase32, totpStep, totpUri } from "../../src/crypto/totp.ts";
import { normalizeRecoveryCode } from "../../src/domain/second-factors.ts";

describe("TOTP (RFC 6238, SHA-1, 6 digits, 30 s)", () => {
  // RFC 6238 appendix B: the SHA-1 key "12345678901234567890"; the 8-digit values' last 6 digits.
  const secret = totpSecretBase32(Buffer.from("12345678901234567890"));
  it("computes the RFC's test vectors", () => {
    expect(secret).toBe("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    expect(totpCode(secret, totpStep(59_000))).toBe("287082");
    expect(totpCode(secret, totpStep(1_111_111_109_000))).toBe("081804");
    expect(totpCode(secret, totpStep(1_234_567_890_000))).toBe("005924");
    expect(totpCode(secret, totpStep(20_000_000_000_000))).toBe("353130");
  });
  it("matches a code only at its own step among those given", () => {
    const step = totpStep(1_234_567_890_000);
    expect(totpMatchingSteps(secret, "005924", [step - 1, step, step + 1])).toEqual([step]);
    expect(totpMatchingSteps(secret, "005924", [step + 1, step + 2])).toEqual([]);
    expect(totpMatchingSteps(secret, "00592", [step])).toEqual([]);
    expect(totpMatchingSteps(secret, "0059245", [step])).toEqual([]);
  });
  it("writes the otpauth URI apps read", () => {
    expect(totpUri(secret, "Acme", "ann@example.com")).toBe(
      "otpauth://totp/Acme:ann%40example.com?issuer=Acme&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30",
    );
  });
});

describe("recovery codes as typed", () => {
  it("ignore case, dashes and spaces, and refuse any other shape", () => {
    expect(normalizeRecoveryCode("ABCDE-FGH23")).toBe("abcdefgh23");
    expect(normalizeRecoveryCode(" abcde fgh23 ")).toBe("abcdefgh23");
    expect(normalizeRecoveryCode("abcde-fgh2")).toBeUndefined();
    expect(normalizeRecoveryCode("abcde-fgh01")).toBeUndefined(); // 0 and 1 are not in the alphabet
    expect(normalizeRecoveryCode("")).toBeUndefined();
  });
});
