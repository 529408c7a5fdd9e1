// One-time tokens: the link tokens (verification, password reset, invitation)
// and the numeric codes (email change) sent out of band. Made from the injected
// Random, stored only as a hash, bound to a purpose, account and identity,
// single use (take() is atomic), expiring, and every look counts against the
// caller IP's code budget.
import { hashSecret } from "../crypto/keyring.ts";
import { invalidArgument } from "./errors.ts";
import type { Limits } from "./limits.ts";
import type { Random } from "./ports/random.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { Tenants } from "./tenants.ts";
import type { OneTimeToken, TokenPurpose } from "./types.ts";

/** Bytes of a link token: 256 bits (DESIGN: ≥ 128-bit link tokens). */
export const LINK_TOKEN_BYTES = 32;

/** base64url of `bytes` random bytes: session tokens, link tokens, API key secrets. */
export function randomToken(random: Random, bytes = LINK_TOKEN_BYTES): string {
  return random.bytes(bytes).toString("base64url");
}

/**
 * `digits` uniformly random decimal digits. Bytes of 250 and above are drawn
 * again (rejection sampling), so no digit is likelier than another.
 */
export function randomDigits(random: Random, digits: number): string {
  let out = "";
  while (out.length < digits) {
    for (const byte of random.bytes(digits - out.length)) {
      if (byte < 250 && out.length < digits) out += String(byte % 10);
    }
  }
  return out;
}

/** How a one-time token is stored and looked up: its SHA-256, never the token. */
export const oneTimeTokenHash = (token: string) => hashSecret(token);

/** The one refusal for a token that is unknown, expired, used, or for another purpose. */
export function tokenRefused(field: string) {
  return invalidArgument(field, "is invalid, expired or already used", "TOKEN_INVALID");
}

/**
 * Stores a new single-use link token (256 random bits; only its hash is kept)
 * bound to its purpose, account and identity. Returns the raw token for the message.
 */
export async function issueLinkToken(
  deps: { tokens: TokenStore; now: () => number; random: Random },
  purpose: TokenPurpose,
  identity: { id: string; tenantId: string; accountId: string },
  ttlMs: number,
  data?: Record<string, string>,
): Promise<{ token: string; expiresAt: number }> {
  const token = randomToken(deps.random);
  const expiresAt = deps.now() + ttlMs;
  const record: OneTimeToken = {
    purpose,
    tenantId: identity.tenantId,
    accountId: identity.accountId,
    identityId: identity.id,
    expiresAt,
    ...(data ? { data } : {}),
  };
  await deps.tokens.put(oneTimeTokenHash(token), record, ttlMs);
  return { token, expiresAt };
}

/** Voids a link token issued for a message that will not be sent. */
export async function discardLinkToken(deps: { tokens: TokenStore }, token: string): Promise<void> {
  await deps.tokens.take(oneTimeTokenHash(token));
}

/**
 * The live token for `purpose`, without using it; refused (TOKEN_INVALID on
 * `field`) otherwise. Every look costs one attempt from the caller IP's code
 * budget, so guessing is limited: the token's tenant's budget, or the
 * request's (`tenantId`) for an unknown token.
 */
export async function peekOneTimeToken(
  deps: { tokens: TokenStore; tenants: Pick<Tenants, "get">; limits: Pick<Limits, "consume">; now: () => number },
  /** `purpose`: the purpose the token must have, or the purposes it may have. */
  input: { field: string; token: string; purpose: TokenPurpose | readonly TokenPurpose[]; tenantId: string; meta: { ip: string } },
): Promise<{ tokenHash: string; token: OneTimeToken }> {
  if (input.token.length === 0 || input.token.length > 256) throw tokenRefused(input.field);
  const tokenHash = oneTimeTokenHash(input.token);
  const peeked = await deps.tokens.peek(tokenHash);
  const tenantForLimits = await deps.tenants.get(peeked?.tenantId ?? input.tenantId);
  await deps.limits.consume("code_ip", tenantForLimits, input.meta.ip);
  const purposes: readonly TokenPurpose[] = typeof input.purpose === "string" ? [input.purpose] : input.purpose;
  if (!peeked || !purposes.includes(peeked.purpose) || peeked.expiresAt <= deps.now()) throw tokenRefused(input.field);
  return { tokenHash, token: peeked };
}

/** Uses a token found by peekOneTimeToken. take() is atomic: of two concurrent uses, one wins. */
export async function takeOneTimeToken(
  deps: { tokens: TokenStore; now: () => number },
  field: string,
  tokenHash: string,
  purpose: TokenPurpose,
): Promise<OneTimeToken> {
  const taken = await deps.tokens.take(tokenHash);
  if (!taken || taken.purpose !== purpose || taken.expiresAt <= deps.now()) throw tokenRefused(field);
  return taken;
}
