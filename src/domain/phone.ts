// Phone numbers: every phone identity, code and SMS uses one form, E.164
// ("+33612345678"), so blind indexes, rate-limit keys and delivery agree.
// Input may be E.164, an MSISDN without the plus (Webcom sends those), or a
// national number read in a default region (a tenant setting). Parsing and
// validity come from libphonenumber-js with its full ("max") metadata, which
// knows each country's number plan, not only its lengths.
import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from "libphonenumber-js/max";
import { invalidArgument } from "./errors.ts";

/** Longer input is refused before parsing (E.164 is at most 16 characters; room is left for spacing). */
const PHONE_INPUT_MAX_LENGTH = 40;
/** Digits, one leading plus, and the separators people type: spaces, dots, dashes, brackets. */
const PHONE_SHAPE = /^\+?[0-9 ().-]+$/;

/** Whether `region` is an ISO 3166-1 alpha-2 code whose number plan is known (for tenant settings). */
export function isSupportedPhoneRegion(region: string): boolean {
  return /^[A-Za-z]{2}$/.test(region) && isSupportedCountry(region.toUpperCase());
}

/**
 * The E.164 form of a phone number, or an invalid_argument error naming `field`.
 * - "+33 6 12 34 56 78" and "0033612345678" (international prefix of the default region) are international;
 * - "33612345678" (MSISDN, no plus) is read as international when it is not a valid
 *   national number of the default region;
 * - "06 12 34 56 78" is read in `defaultRegion` (e.g. "FR").
 * Numbers that are possible in length but not allocated in their country's plan are refused.
 */
export function normalizePhone(input: string, defaultRegion?: string, field = "phone"): string {
  const raw = input.normalize("NFKC").trim();
  if (raw.length === 0) throw invalidArgument(field, "is required", "PHONE_REQUIRED");
  if (raw.length > PHONE_INPUT_MAX_LENGTH || !PHONE_SHAPE.test(raw)) {
    throw invalidArgument(field, "is not a valid phone number", "PHONE_INVALID");
  }
  // An unknown region (settings are checked with isSupportedPhoneRegion) leaves only the international readings.
  const region = defaultRegion !== undefined && isSupportedPhoneRegion(defaultRegion) ? (defaultRegion.toUpperCase() as CountryCode) : undefined;
  const digits = raw.replace(/[^0-9]/g, "");
  const candidates = raw.startsWith("+")
    ? [parse(`+${digits}`)]
    : // National (or the region's international prefix) first, then the MSISDN reading.
      [region ? parse(digits, region) : undefined, parse(`+${digits}`)];
  const valid = candidates.find((number) => number !== undefined);
  if (!valid) throw invalidArgument(field, "is not a valid phone number", "PHONE_INVALID");
  return valid;
}

/** E.164 when `text` parses to a valid, extension-free number; undefined otherwise. */
function parse(text: string, region?: CountryCode): string | undefined {
  const number = parsePhoneNumberFromString(text, region ? { defaultCountry: region } : undefined);
  if (!number || number.ext || !number.isValid()) return undefined;
  return number.number;
}
