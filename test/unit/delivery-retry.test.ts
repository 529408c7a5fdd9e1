// The outbox's retry schedule and failure classes (src/delivery/retry.ts), with
// an injected clock and jitter: how long a message is retried, how often, and
// which SMTP answers end it at once.
import { describe, expect, it } from "vitest";
import { classifySendError, DEFAULT_RETRY_POLICY, describeFailure, nextAttemptAt, retryDelayMs, type RetryPolicy } from "../../src/delivery/retry.ts";

/** Every attempt time of a message that always fails transiently, from its queueing at 0 until given up. */
function schedule(policy: RetryPolicy, random: () => number): number[] {
  const attempts: number[] = [];
  let now = 0;
  for (let attempt = 1; ; attempt++) {
    attempts.push(now);
    const next = nextAttemptAt({ attempt, now, queuedAt: 0, delayMs: retryDelayMs(attempt, policy, random), maxAgeMs: policy.maxAgeMs });
    if (next === null) return attempts;
    now = next;
  }
}

const HOUR = 3_600_000;

describe("retry schedule", () => {
  it("doubles from the base delay up to the cap, each delay between half and all of its step", () => {
    const policy: RetryPolicy = { baseDelayMs: 30_000, maxDelayMs: HOUR, maxAgeMs: 48 * HOUR };
    const full = [1, 2, 3, 4, 5, 6, 7, 8, 9, 30, 1000].map((attempt) => retryDelayMs(attempt, policy, () => 1));
    expect(full).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, HOUR, HOUR, HOUR, HOUR]);
    const half = [1, 2, 9].map((attempt) => retryDelayMs(attempt, policy, () => 0));
    expect(half).toEqual([15_000, 30_000, HOUR / 2]);
    // Jitter spreads messages that failed together: many draws, many delays, all within bounds.
    let seed = 1;
    const lcg = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const draws = Array.from({ length: 200 }, () => retryDelayMs(5, policy, lcg));
    expect(new Set(draws).size).toBeGreaterThan(150);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(240_000);
    expect(Math.max(...draws)).toBeLessThanOrEqual(480_000);
  });

  it("by default keeps trying for two days — through an outage of hours — and makes its last attempt at the deadline", () => {
    for (const random of [() => 0, () => 0.5, () => 1]) {
      const attempts = schedule(DEFAULT_RETRY_POLICY, random);
      expect(attempts.at(-1)).toBe(48 * HOUR);
      // Attempts keep coming through the whole window: never more than an hour apart.
      const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(HOUR);
      // The first few minutes no longer use up the message (8 attempts in ~3 minutes, before).
      expect(attempts.filter((at) => at <= 3 * 60_000).length).toBeLessThanOrEqual(5);
      expect(attempts.length).toBeGreaterThan(48);
      expect(attempts.length).toBeLessThan(110);
    }
  });

  it("gives up only once the maximum age is reached, counted from the (re)queue time", () => {
    expect(nextAttemptAt({ attempt: 3, now: 1000, queuedAt: 0, delayMs: 500, maxAgeMs: 10_000 })).toBe(1500);
    expect(nextAttemptAt({ attempt: 3, now: 9800, queuedAt: 0, delayMs: 500, maxAgeMs: 10_000 })).toBe(10_000);
    expect(nextAttemptAt({ attempt: 3, now: 10_000, queuedAt: 0, delayMs: 500, maxAgeMs: 10_000 })).toBeNull();
    expect(nextAttemptAt({ attempt: 3, now: 10_000, queuedAt: 5000, delayMs: 500, maxAgeMs: 10_000 })).toBe(10_500);
  });
});

/** An error shaped as nodemailer 10 shapes it (smtp-connection's _formatError), with the address where nodemailer puts it. */
function smtpError(code: string, response: string | undefined, command: string, extra: Record<string, unknown> = {}): Error {
  const error = new Error(`Can't send mail - all recipients were rejected${response ? `: ${response}` : ""}`);
  const responseCode = response ? Number(/^\d+/.exec(response)?.[0]) : undefined;
  return Object.assign(error, { code, command, ...(response ? { response, responseCode } : {}), ...extra });
}

describe("failure classes", () => {
  const address = "jane.doe@example.com";

  it("a 5xx for the recipient or the message is permanent", () => {
    const rcpt = smtpError("EENVELOPE", `550 5.1.1 <${address}>: no such user`, "RCPT TO", { rejected: [address], rejectedErrors: [new Error(address)] });
    expect(classifySendError(rcpt)).toStrictEqual({ class: "permanent", code: "EENVELOPE", responseCode: 550, command: "RCPT TO" });
    expect(classifySendError(smtpError("EMESSAGE", "554 5.7.1 message refused", "DATA")).class).toBe("permanent");
    // nodemailer's own refusal of an unusable address, before anything is sent.
    expect(classifySendError(Object.assign(new Error(`Invalid recipient "${address}"`), { code: "EENVELOPE", command: "API" })).class).toBe("permanent");
  });

  it("a 4xx, a connection refused, a timeout, and a 5xx to AUTH or MAIL FROM (our own setup) are transient", () => {
    expect(classifySendError(smtpError("EENVELOPE", `451 4.3.0 <${address}> try later`, "RCPT TO")).class).toBe("transient");
    expect(classifySendError(smtpError("EENVELOPE", "452 4.2.2 mailbox full", "RCPT TO")).class).toBe("transient");
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:2525"), { code: "ESOCKET", originalCode: "ECONNREFUSED", command: "CONN" });
    expect(classifySendError(refused)).toStrictEqual({ class: "transient", code: "ESOCKET", originalCode: "ECONNREFUSED", command: "CONN" });
    expect(classifySendError(Object.assign(new Error("Greeting never received"), { code: "ETIMEDOUT", command: "CONN" })).class).toBe("transient");
    expect(classifySendError(smtpError("EAUTH", "535 5.7.8 authentication failed", "AUTH PLAIN")).class).toBe("transient");
    expect(classifySendError(smtpError("EENVELOPE", "553 5.7.1 sender not allowed", "MAIL FROM")).class).toBe("transient");
    expect(classifySendError(new Error("anything else")).class).toBe("transient");
    expect(classifySendError("not even an error")).toStrictEqual({ class: "transient", code: "UNKNOWN" });
  });

  it("keeps codes only: no message, response, recipient or rejected list, and nothing that is not shaped like a code", () => {
    const rcpt = smtpError("EENVELOPE", `550 <${address}> unknown`, "RCPT TO", { rejected: [address], recipient: address });
    const failure = classifySendError(rcpt);
    expect(JSON.stringify(failure)).not.toContain("jane");
    expect(describeFailure(failure)).toBe("EENVELOPE 550 RCPT TO");
    const forged = classifySendError({ code: address, originalCode: `x ${address}`, command: address, responseCode: "550 jane" });
    expect(JSON.stringify(forged)).not.toContain("jane");
    expect(forged).toStrictEqual({ class: "transient", code: "UNKNOWN" });
  });
});
