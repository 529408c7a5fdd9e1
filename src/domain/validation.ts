// Input rules shared by every RPC: email shape and normalization, password
// policy (NIST 800-63B-4 / ASVS 5), locales. Failures are invalid_argument
// errors naming the request field.
import { ZxcvbnFactory } from "@zxcvbn-ts/core";
import { adjacencyGraphs, dictionary } from "@zxcvbn-ts/language-common";
import { invalidArgument } from "./errors.ts";
import { SUPPORTED_LOCALES, type Locale } from "./types.ts";

export const PASSWORD_MAX_LENGTH = 1024;
const EMAIL_MAX_LENGTH = 254;
/** Minimum zxcvbn score (0–4) a password needs; 3 = "safely unguessable". */
const MIN_PASSWORD_SCORE = 3;

// A pragmatic address shape: one @, a dot-separated domain, no spaces or controls.
const EMAIL_SHAPE = /^[^\s@"<>()[\]\\,;:\p{Cc}\p{Cf}]+@(?=.{1,253}$)(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+[\p{L}]{2,63}$/u;

/** The form used for blind indexes and delivery: NFKC, trimmed, lower case. */
export function normalizeEmail(field: string, raw: string): string {
  const email = raw.normalize("NFKC").trim().toLowerCase();
  if (email.length === 0) throw invalidArgument(field, "is required");
  if (email.length > EMAIL_MAX_LENGTH || !EMAIL_SHAPE.test(email)) throw invalidArgument(field, "is not a valid email address");
  return email;
}

export function parseLocale(field: string, raw: string, fallback: Locale): Locale {
  if (raw === "") return fallback;
  const language = raw.toLowerCase().split(/[-_]/)[0];
  const locale = SUPPORTED_LOCALES.find((l) => l === language);
  if (!locale) throw invalidArgument(field, `is not a supported locale (${SUPPORTED_LOCALES.join(", ")})`);
  return locale;
}

const zxcvbn = new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs });
const commonPasswords = new Set((dictionary["passwords-common"] ?? []).map((p) => String(p).toLowerCase()));

/**
 * Checks a new password and returns it NFKC-normalised (the form that is
 * hashed, so the same password typed on another keyboard still matches).
 * No composition rules; never truncated; common and guessable ones refused.
 */
export function checkNewPassword(field: string, raw: string, minLength: number, userInputs: string[] = []): string {
  // Length is checked on the raw value first so a 10 MB body costs nothing more.
  if (raw.length > PASSWORD_MAX_LENGTH * 4) throw invalidArgument(field, `must be at most ${PASSWORD_MAX_LENGTH} characters`, "PASSWORD_TOO_LONG");
  const password = normalizePassword(raw);
  const length = [...password].length;
  if (length === 0) throw invalidArgument(field, "is required", "PASSWORD_REQUIRED");
  if (length < minLength) throw invalidArgument(field, `must be at least ${minLength} characters`, "PASSWORD_TOO_SHORT");
  if (length > PASSWORD_MAX_LENGTH) throw invalidArgument(field, `must be at most ${PASSWORD_MAX_LENGTH} characters`, "PASSWORD_TOO_LONG");
  if (commonPasswords.has(password.toLowerCase())) throw invalidArgument(field, "is a commonly used password", "PASSWORD_COMMON");
  if (zxcvbn.check(password.slice(0, 100), userInputs).score < MIN_PASSWORD_SCORE) {
    throw invalidArgument(field, "is too easy to guess; a few unrelated words make a strong password", "PASSWORD_WEAK");
  }
  return password;
}

/** The form a password is hashed and verified in. */
export function normalizePassword(raw: string): string {
  return raw.normalize("NFKC");
}

export function requireNonEmpty(field: string, value: string, maxLength = 4096): string {
  if (value.length === 0) throw invalidArgument(field, "is required");
  if (value.length > maxLength) throw invalidArgument(field, `must be at most ${maxLength} characters`);
  return value;
}
