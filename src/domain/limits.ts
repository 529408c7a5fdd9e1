// Rate limits for everything that checks a credential or sends a message.
// Each budget is progressive: the base budget per 15 minutes (or per hour for
// messages and sign-ups), then twice it per hour and four times it per day, so
// a persistent attacker waits longer and longer, yet nobody is ever locked out
// for good. Passwords, codes and messages count on separate keys, and every
// counter belongs to one tenant. The tiers of one check are counted in one
// limiter call (one Redis round trip; a message that passes its source's share
// takes a second). docs/rate-limits.md says what they protect and what they
// never do.
import { rateLimited } from "./errors.ts";
import type { RateCounter, RateLimiter } from "./ports/limits.ts";
import type { TenantSettings } from "./types.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * What a password guess at a busy account costs in time, by how many of the
 * account's tiers are exceeded across all sources: slower, never refused, so
 * strangers cannot lock the owner out. Bounded: the owner waits at most this.
 */
export const ACCOUNT_SLOWDOWN_MS = [500, 1000, 2000] as const;

/** What is being limited; each has its own counters. Password guesses and messages: see Limits. */
export type LimitedAction =
  | "sign_up_ip"
  | "code_ip"
  | "code_account"
  | "second_factor_challenge"
  | "assisted_recovery_caller"
  | "assisted_recovery_account"
  | "sms_ip"
  | "sms_tenant"
  | "guest_ip";

/** Wrong codes one second-factor challenge takes (it lives 5 minutes): then a new sign-in is needed. */
export const SECOND_FACTOR_CHALLENGE_ATTEMPTS = 5;

/** Admin-assisted recovery (email change, temporary password), per hour: per admin, and per account acted on. */
export const ASSISTED_RECOVERY_LIMITS = Object.freeze({ perCaller: 20, perAccount: 3 });

/** The tenant whose budgets (and counters) apply. */
export interface LimitScope {
  id: string;
  settings: TenantSettings;
}

interface Budget {
  /** Attempts allowed in the base window. */
  base: number;
  windowMs: number;
}

function budgetFor(action: LimitedAction | "sign_in_ip" | "sign_in_account" | "message_address", settings: TenantSettings): Budget {
  switch (action) {
    case "sign_in_ip":
      return { base: settings.signInPerIpLimit, windowMs: 15 * MINUTE };
    case "sign_in_account":
      return { base: settings.signInPerAccountLimit, windowMs: 15 * MINUTE };
    case "sign_up_ip":
      return { base: settings.signUpPerIpLimit, windowMs: HOUR };
    case "code_ip":
      return { base: settings.codeAttemptsPerIpLimit, windowMs: 15 * MINUTE };
    case "code_account":
      return { base: settings.codeAttemptsPerAccountLimit, windowMs: 15 * MINUTE };
    case "second_factor_challenge":
      return { base: SECOND_FACTOR_CHALLENGE_ATTEMPTS, windowMs: 15 * MINUTE };
    case "message_address":
      return { base: settings.messagesPerAddressLimit, windowMs: HOUR };
    case "assisted_recovery_caller":
      return { base: ASSISTED_RECOVERY_LIMITS.perCaller, windowMs: HOUR };
    case "assisted_recovery_account":
      return { base: ASSISTED_RECOVERY_LIMITS.perAccount, windowMs: HOUR };
    case "sms_ip":
      return { base: settings.smsPerIpLimit, windowMs: HOUR };
    case "sms_tenant":
      return { base: settings.smsDailyLimit, windowMs: DAY };
    case "guest_ip":
      return { base: settings.guestSignInPerIpLimit, windowMs: HOUR };
  }
}

/** The tiers of a budget as counters named `field`: base per window, 2× per 4 windows (at least an hour), 4× per day. */
function tiers({ base, windowMs }: Budget, field = ""): RateCounter[] {
  // A daily budget (the tenant's SMS) is one counter: its tiers would all be per day.
  if (windowMs >= DAY) return [{ field, limit: base, windowMs }];
  return [
    { field, limit: base, windowMs },
    { field, limit: base * 2, windowMs: Math.max(HOUR, windowMs * 4) },
    { field, limit: base * 4, windowMs: DAY },
  ];
}

/**
 * What one client IP counts as: an IPv6 address by its /64 (one subscriber
 * commonly holds a whole /64, so single addresses would give an attacker
 * endless fresh budgets), an IPv4-mapped one as the IPv4 address; anything
 * else (IPv4, an admin's id) as it is.
 */
export function sourceKey(ip: string): string {
  const address = ip.split("%", 1)[0]!.toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return ip;
  const halves = address.split("::");
  if (halves.length > 2) return ip;
  const groups = (half: string | undefined) => (half ? half.split(":") : []);
  const [head, tail] = [groups(halves[0]), groups(halves[1])];
  // An embedded IPv4 tail (::ffff:… handled above, 64:ff9b::1.2.3.4) is two groups; only the first four matter.
  if (tail.length > 0 && tail.at(-1)!.includes(".")) tail.splice(-1, 1, "0", "0");
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return ip;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return ip;
  return `${all
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

/** Counters are per tenant: one tenant's traffic never spends another's budget. The group is one Redis Cluster slot. */
const group = (scope: LimitScope, action: string, key: string) => `${scope.id}:${action}:${key}`;

/** A counted attempt, which a success takes back. */
export interface CountedAttempt {
  refund(): Promise<void>;
}

/** A counted password guess. */
export interface PasswordGuess {
  /** The password was correct: takes the guess back from every counter it was counted on. */
  refund(): Promise<void>;
}

export interface Limits {
  /**
   * Counts one attempt on `key` (a client IP for the *_ip actions, see sourceKey; an
   * account or phone blind index for code_account; "" for sms_tenant, the tenant's
   * daily SMS budget); throws resource_exhausted with the delay when over budget.
   * The answer takes the attempt back (a correct code: only failures should stay counted).
   */
  consume(action: LimitedAction, scope: LimitScope, key: string): Promise<CountedAttempt>;
  /**
   * Counts one message to `address` (its blind index) asked for by `source`
   * (the client IP, or the admin sending it); false when over budget, for a
   * silent drop. Each source has the address's budget to itself, and the
   * address gets at most twice that whoever asks: nobody bombs a mailbox
   * through us, and no single stranger spends the owner's budget for
   * verification or reset mail.
   */
  tryMessage(scope: LimitScope, address: string, source: string): Promise<boolean>;
  /** tryMessage, throwing resource_exhausted with the delay — for a caller told that the message cannot go out (an admin). */
  consumeMessage(scope: LimitScope, address: string, source: string): Promise<void>;
  /**
   * Counts one guess at the password of `account` (the address's blind index,
   * whether or not it exists) from `ip` (the client's, see sourceKey), before it is
   * checked. Refused (resource_exhausted) only when the source is over its own
   * budget, across accounts or at this account; the account's guesses from
   * every source only slow the answer down (ACCOUNT_SLOWDOWN_MS). The caller
   * refunds a correct guess, so only failures stay counted: the owner signing
   * in again and again spends nothing, and a correct password from a source
   * with no recent failures always gets through.
   */
  passwordGuess(scope: LimitScope, account: string, ip: string): Promise<PasswordGuess>;
  /** After a completed password reset: the account's guess counters, every source's, start afresh. */
  forgivePasswordGuesses(scope: LimitScope, account: string): Promise<void>;
}

export function createLimits(limiter: RateLimiter, options: { sleep?: (ms: number) => Promise<void> } = {}): Limits {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  /** The longest wait among refused counters; 0 when all allowed. */
  const retryAfter = (results: ReadonlyArray<{ allowed: boolean; retryAfterMs: number }>) =>
    Math.max(0, ...results.filter((r) => !r.allowed).map((r) => r.retryAfterMs));

  async function checkMessage(scope: LimitScope, address: string, source: string): Promise<number> {
    const budget = budgetFor("message_address", scope.settings);
    const addressGroup = group(scope, "message_address", address);
    const ownShare = retryAfter(await limiter.hit(addressGroup, tiers(budget, `src:${sourceKey(source)}`)));
    if (ownShare > 0) return ownShare;
    // Only what a source's share let through counts for the address: asking on
    // and on from one source spends nothing of the others'.
    return retryAfter(await limiter.hit(addressGroup, tiers({ ...budget, base: budget.base * 2 })));
  }

  return {
    async consume(action, scope, key) {
      // Client IPs count by source (sourceKey); accounts, challenges and admins as they are.
      const counted = action === "code_ip" || action === "sign_up_ip" || action === "sms_ip" || action === "guest_ip" ? sourceKey(key) : key;
      const at = limiter.now();
      const [name, counters] = [group(scope, action, counted), tiers(budgetFor(action, scope.settings))];
      const retryAfterMs = retryAfter(await limiter.hit(name, counters, at));
      if (retryAfterMs > 0) throw rateLimited(retryAfterMs);
      return { refund: () => limiter.refund(name, counters, at) };
    },
    async tryMessage(scope, address, source) {
      return (await checkMessage(scope, address, source)) === 0;
    },
    async consumeMessage(scope, address, source) {
      const retryAfterMs = await checkMessage(scope, address, source);
      if (retryAfterMs > 0) throw rateLimited(retryAfterMs);
    },
    async passwordGuess(scope, account, ip) {
      const source = sourceKey(ip);
      const perAccount = budgetFor("sign_in_account", scope.settings);
      const sourceGroup = group(scope, "sign_in_ip", source);
      const sourceCounters = tiers(budgetFor("sign_in_ip", scope.settings));
      const accountGroup = group(scope, "sign_in_account", account);
      const accountCounters = [...tiers(perAccount, `src:${source}`), ...tiers(perAccount)];
      // Counted before the check, so concurrent guesses cannot overshoot a budget;
      // one time for both groups, so a refund takes back these windows' counts.
      const at = limiter.now();
      // Two groups (two slots), counted at once: the source across accounts; this
      // account from this source (a field) and from every source (the group's own).
      const [bySource, byAccount] = await Promise.all([limiter.hit(sourceGroup, sourceCounters, at), limiter.hit(accountGroup, accountCounters, at)]);
      const fromSource = byAccount.length / 2;
      const retryAfterMs = retryAfter([...bySource, ...byAccount.slice(0, fromSource)]);
      if (retryAfterMs > 0) throw rateLimited(retryAfterMs);
      const exceeded = byAccount.slice(fromSource).filter((r) => !r.allowed).length;
      if (exceeded > 0) await sleep(ACCOUNT_SLOWDOWN_MS[Math.min(exceeded, ACCOUNT_SLOWDOWN_MS.length) - 1]!);
      return {
        async refund() {
          await Promise.all([limiter.refund(sourceGroup, sourceCounters, at), limiter.refund(accountGroup, accountCounters, at)]);
        },
      };
    },
    async forgivePasswordGuesses(scope, account) {
      await limiter.reset(
        group(scope, "sign_in_account", account),
        tiers(budgetFor("sign_in_account", scope.settings)).map((c) => c.windowMs),
      );
    },
  };
}
