// Rate limits for everything that checks a credential or sends a message.
// Each budget is progressive: the base budget per 15 minutes (or per hour for
// messages and sign-ups), then twice it per hour and four times it per day, so
// a persistent attacker waits longer and longer, yet nobody is ever locked out
// for good. Passwords, codes and messages count on separate keys.
import { rateLimited } from "./errors.ts";
import type { RateLimiter } from "./ports/limits.ts";
import type { TenantSettings } from "./types.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** What is being limited; each has its own counters. */
export type LimitedAction =
  | "sign_in_ip"
  | "sign_in_account"
  | "sign_up_ip"
  | "code_ip"
  | "code_account"
  | "message_address";

interface Budget {
  /** Attempts allowed in the base window. */
  base: number;
  windowMs: number;
}

function budgetFor(action: LimitedAction, settings: TenantSettings): Budget {
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
    case "message_address":
      return { base: settings.messagesPerAddressLimit, windowMs: HOUR };
  }
}

/** The tiers of a budget: base per window, 2× per 4 windows (at least an hour), 4× per day. */
function tiers({ base, windowMs }: Budget): Array<{ limit: number; windowMs: number }> {
  return [
    { limit: base, windowMs },
    { limit: base * 2, windowMs: Math.max(HOUR, windowMs * 4) },
    { limit: base * 4, windowMs: DAY },
  ];
}

export interface Limits {
  /** Counts one attempt; throws resource_exhausted with the delay when over budget. */
  consume(action: LimitedAction, key: string, settings: TenantSettings): Promise<void>;
  /** Counts one attempt; false (without throwing) when over budget — for silent drops such as messages. */
  tryConsume(action: LimitedAction, key: string, settings: TenantSettings): Promise<boolean>;
}

export function createLimits(limiter: RateLimiter): Limits {
  async function check(action: LimitedAction, key: string, settings: TenantSettings): Promise<number> {
    let retryAfterMs = 0;
    for (const tier of tiers(budgetFor(action, settings))) {
      const result = await limiter.consume(`${action}:${key}`, tier.limit, tier.windowMs);
      if (!result.allowed) retryAfterMs = Math.max(retryAfterMs, result.retryAfterMs);
    }
    return retryAfterMs;
  }
  return {
    async consume(action, key, settings) {
      const retryAfterMs = await check(action, key, settings);
      if (retryAfterMs > 0) throw rateLimited(retryAfterMs);
    },
    async tryConsume(action, key, settings) {
      return (await check(action, key, settings)) === 0;
    },
  };
}
