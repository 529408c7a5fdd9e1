// TOTP (RFC 6238) and its enrollment QR code: pure computation over `otpauth`
// (HMAC through node:crypto) and `qrcode`. SHA-1, 6 digits, 30 s steps: what
// every authenticator app reads from an otpauth:// URI. Which steps are
// accepted, and that each is accepted only once, is the domain's rule
// (src/domain/second-factors.ts); this only computes.
import { timingSafeEqual } from "node:crypto";
import { Secret, TOTP } from "otpauth";
import QRCode from "qrcode";

export const TOTP_PERIOD_MS = 30_000;
export const TOTP_DIGITS = 6;
/** 160-bit secrets, the HMAC-SHA-1 key size RFC 4226 recommends. */
export const TOTP_SECRET_BYTES = 20;

/** The step (counter) a time falls in. */
export const totpStep = (atMs: number) => Math.floor(atMs / TOTP_PERIOD_MS);

/** The base32 text (RFC 4648, unpadded) of a raw secret. */
export function totpSecretBase32(raw: Buffer): string {
  return new Secret({ buffer: raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer }).base32;
}

function totpOf(secretBase32: string, issuer = "", label = ""): TOTP {
  return new TOTP({ issuer, label, algorithm: "SHA1", digits: TOTP_DIGITS, period: TOTP_PERIOD_MS / 1000, secret: Secret.fromBase32(secretBase32) });
}

/** The code of a step. */
export function totpCode(secretBase32: string, step: number): string {
  return totpOf(secretBase32).generate({ timestamp: step * TOTP_PERIOD_MS });
}

/**
 * The steps among `steps` whose code is `code`, in the order given; every step
 * is computed and compared in constant time, whatever matches.
 */
export function totpMatchingSteps(secretBase32: string, code: string, steps: readonly number[]): number[] {
  const given = Buffer.from(code.padEnd(TOTP_DIGITS, "x").slice(0, TOTP_DIGITS));
  const matching: number[] = [];
  for (const step of steps) if (timingSafeEqual(Buffer.from(totpCode(secretBase32, step)), given) && code.length === TOTP_DIGITS) matching.push(step);
  return matching;
}

/** The otpauth:// URI an authenticator app reads (Key Uri Format). */
export function totpUri(secretBase32: string, issuer: string, label: string): string {
  return totpOf(secretBase32, issuer, label).toString();
}

/** `text` as a QR code, one SVG document. */
export function qrCodeSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
}
