// The rate-limit rules on the in-process limiter and an injected clock and sleep:
// one limiter call per group, password guesses refused per source and only slowed
// (boundedly) per account, a completed reset forgives, tenants count apart.
import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { ACCOUNT_SLOWDOWN_MS, createLimits, sourceKey, type LimitScope } from "../../src/domain/limits.ts";
import type { RateLimiter } from "../../src/domain/ports/limits.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";

const T0 = Date.UTC(2030, 0, 1);
const tenant: LimitScope = { id: "t1", settings: { ...DEFAULT_TENANT_SETTINGS, signInPerAccountLimit: 10, signInPerIpLimit: 100 } };

function setup() {
  let t = T0;
  const inner = createMemoryStores({ now: () => t }).rateLimiter;
  const calls: string[] = [];
  const limiter: RateLimiter = {
    hit: (group, counters, at) => (calls.push(`hit ${group}`), inner.hit(group, counters, at)),
    refund: (group, counters, at) => (calls.push(`refund ${group}`), inner.refund(group, counters, at)),
    reset: (group, windows) => (calls.push(`reset ${group}`), inner.reset(group, windows)),
    now: () => inner.now(),
  };
  const slept: number[] = [];
  const limits = createLimits(limiter, { sleep: async (ms) => void slept.push(ms) });
  return { limits, calls, slept, advance: (ms: number) => (t += ms) };
}

const refusedCode = (promise: Promise<unknown>) =>
  promise.then(
    () => "allowed",
    (error: unknown) => (error instanceof DomainError ? error.kind : String(error)),
  );

describe("limits", () => {
  it("counts the tiers of a check in one limiter call per group", async () => {
    const { limits, calls } = setup();
    await limits.consume("code_ip", tenant, "192.0.2.1");
    expect(calls).toEqual(["hit t1:code_ip:192.0.2.1"]);
    calls.length = 0;
    await limits.passwordGuess(tenant, "lookup-a", "192.0.2.1");
    expect(calls.sort()).toEqual(["hit t1:sign_in_account:lookup-a", "hit t1:sign_in_ip:192.0.2.1"]);
  });

  it("refuses a source over its budget at an account; other sources are slowed by a bounded delay, never refused", async () => {
    const { limits, slept } = setup();
    const outcomes: string[] = [];
    for (let i = 0; i < 60; i++) outcomes.push(await refusedCode(limits.passwordGuess(tenant, "lookup-a", "203.0.113.1")));
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill("allowed"));
    expect(outcomes.slice(10)).toEqual(Array(50).fill("resource_exhausted"));
    expect(slept).toEqual([]); // refusals are not slowed: the source learns nothing more by waiting
    // 60 guesses: over every account-wide tier (10, 20, 40). From anywhere else: the longest delay, no refusal.
    for (let i = 0; i < 30; i++) expect(await refusedCode(limits.passwordGuess(tenant, "lookup-a", `198.51.100.${i}`))).toBe("allowed");
    expect(slept).toEqual(Array(30).fill(ACCOUNT_SLOWDOWN_MS.at(-1)));
  });

  it("the tenant's daily SMS budget is one counter per day, whatever the source; SMS and guest budgets per source count IPv6 by /64", async () => {
    const { limits, advance } = setup();
    const scope: LimitScope = { id: "t1", settings: { ...tenant.settings, smsDailyLimit: 3, smsPerIpLimit: 2, guestSignInPerIpLimit: 1 } };
    const sends = [];
    for (let i = 0; i < 4; i++) sends.push(await refusedCode(limits.consume("sms_tenant", scope, "")));
    expect(sends).toEqual(["allowed", "allowed", "allowed", "resource_exhausted"]);
    advance(24 * 3_600_000);
    expect(await refusedCode(limits.consume("sms_tenant", scope, ""))).toBe("allowed"); // a new day
    // Another tenant's budget is its own.
    expect(await refusedCode(limits.consume("sms_tenant", { ...scope, id: "t2" }, ""))).toBe("allowed");
    expect(await refusedCode(limits.consume("sms_ip", scope, "2001:db8:1:2::1"))).toBe("allowed");
    expect(await refusedCode(limits.consume("sms_ip", scope, "2001:db8:1:2::99"))).toBe("allowed");
    expect(await refusedCode(limits.consume("sms_ip", scope, "2001:db8:1:2:ffff::7"))).toBe("resource_exhausted");
    expect(await refusedCode(limits.consume("guest_ip", scope, "192.0.2.7"))).toBe("allowed");
    expect(await refusedCode(limits.consume("guest_ip", scope, "192.0.2.7"))).toBe("resource_exhausted");
    expect(await refusedCode(limits.consume("guest_ip", scope, "192.0.2.8"))).toBe("allowed");
  });

  it("slows by how many account-wide tiers are exceeded", async () => {
    const { limits, slept } = setup();
    for (let i = 0; i < 41; i++) await limits.passwordGuess(tenant, "lookup-b", `198.51.100.${i}`);
    expect(slept).toEqual([...Array(10).fill(500), ...Array(20).fill(1000), 2000]);
    expect(Math.max(...slept)).toBeLessThanOrEqual(ACCOUNT_SLOWDOWN_MS.at(-1)!);
  });

  it("a completed reset forgives every source's guesses at the account, and only this account's", async () => {
    const { limits, slept } = setup();
    for (let i = 0; i < 45; i++) await refusedCode(limits.passwordGuess(tenant, "lookup-c", "203.0.113.2"));
    for (let i = 0; i < 11; i++) await refusedCode(limits.passwordGuess(tenant, "lookup-d", "203.0.113.3"));
    await limits.forgivePasswordGuesses(tenant, "lookup-c");
    slept.length = 0;
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-c", "203.0.113.2"))).toBe("allowed");
    expect(slept).toEqual([]);
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-d", "203.0.113.3"))).toBe("resource_exhausted");
  });

  it("a correct password refunds its guess: the owner signing in 5x the account's day budget from one source is never refused nor slowed", async () => {
    const { limits, slept, calls } = setup();
    // 50 > every account tier (10, 20, 40); each guess is checked correct and refunded.
    for (let i = 0; i < 50; i++) {
      const guess = await limits.passwordGuess(tenant, "lookup-g", "192.0.2.50");
      await guess.refund();
    }
    expect(slept).toEqual([]);
    expect([...new Set(calls.filter((c) => c.startsWith("refund")))].sort()).toEqual(["refund t1:sign_in_account:lookup-g", "refund t1:sign_in_ip:192.0.2.50"]);
    // Failures still count, from the full budget: the 11th wrong one from the source is refused.
    const outcomes: string[] = [];
    for (let i = 0; i < 11; i++) outcomes.push(await refusedCode(limits.passwordGuess(tenant, "lookup-g", "192.0.2.50")));
    expect(outcomes).toEqual([...Array(10).fill("allowed"), "resource_exhausted"]);
  });

  it("a refund takes back only its own guess: failures around successes keep counting", async () => {
    const { limits } = setup();
    for (let i = 0; i < 9; i++) await limits.passwordGuess(tenant, "lookup-h", "192.0.2.51");
    await (await limits.passwordGuess(tenant, "lookup-h", "192.0.2.51")).refund();
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-h", "192.0.2.51"))).toBe("allowed"); // the 10th failure
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-h", "192.0.2.51"))).toBe("resource_exhausted");
  });

  it("a refund after a window boundary takes back the window that was counted, not the new one", async () => {
    const { limits, advance } = setup();
    advance(15 * 60_000 - 1);
    const guess = await limits.passwordGuess(tenant, "lookup-i", "192.0.2.52"); // last ms of a 15-minute window
    advance(1);
    for (let i = 0; i < 10; i++) await limits.passwordGuess(tenant, "lookup-i", "192.0.2.52"); // the new window's budget, all failures
    await guess.refund();
    // Had the refund taken one from the new window, an 11th failure there would pass.
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-i", "192.0.2.52"))).toBe("resource_exhausted");
  });

  it("counts each tenant apart", async () => {
    const { limits } = setup();
    const other: LimitScope = { ...tenant, id: "t2" };
    for (let i = 0; i < 3; i++)
      await limits.consume("code_account", { ...tenant, settings: { ...tenant.settings, codeAttemptsPerAccountLimit: 3 } }, "account-1");
    expect(
      await refusedCode(limits.consume("code_account", { ...tenant, settings: { ...tenant.settings, codeAttemptsPerAccountLimit: 3 } }, "account-1")),
    ).toBe("resource_exhausted");
    expect(await refusedCode(limits.consume("code_account", { ...other, settings: { ...other.settings, codeAttemptsPerAccountLimit: 3 } }, "account-1"))).toBe(
      "allowed",
    );
  });

  it("messages: each source has the address's budget to itself; the address gets at most twice it, whoever asks", async () => {
    const { limits, calls } = setup();
    const scope: LimitScope = { ...tenant, settings: { ...tenant.settings, messagesPerAddressLimit: 5 } };
    const sent = async (source: string, n: number) => {
      let count = 0;
      for (let i = 0; i < n; i++) if (await limits.tryMessage(scope, "address-a", source)) count++;
      return count;
    };
    expect(await sent("203.0.113.9", 20)).toBe(5); // a stranger spends only its own share
    // One call per ask, a second for the address-wide count when the source's share allows.
    expect(calls.filter((c) => c === "hit t1:message_address:address-a")).toHaveLength(20 + 5);
    expect(await sent("198.51.100.9", 1)).toBe(1); // the owner still gets the reset mail
    expect(await sent("198.51.100.10", 10)).toBe(4); // and the mailbox gets 10 an hour at most
    await expect(limits.consumeMessage(scope, "address-a", "admin:1")).rejects.toMatchObject({ kind: "resource_exhausted" });
    expect(await sent("203.0.113.9", 1)).toBe(0);
    expect(await limits.tryMessage(scope, "address-b", "203.0.113.9")).toBe(true);
  });

  it("windows pass: the source's refusal ends with its window", async () => {
    const { limits, advance } = setup();
    for (let i = 0; i < 11; i++) await refusedCode(limits.passwordGuess(tenant, "lookup-e", "203.0.113.4"));
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-e", "203.0.113.4"))).toBe("resource_exhausted");
    advance(15 * 60_000);
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-e", "203.0.113.4"))).toBe("allowed");
  });

  it("counts an IPv6 client by its /64, an IPv4-mapped one as IPv4, anything else as it is", () => {
    const cases: Array<[string, string]> = [
      ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
      ["2001:0DB8:0001:0002::ffff", "2001:db8:1:2::/64"],
      ["2001:db8::1", "2001:db8:0:0::/64"],
      ["::1", "0:0:0:0::/64"],
      ["fe80::1%eth0", "fe80:0:0:0::/64"],
      ["64:ff9b::192.0.2.1", "64:ff9b:0:0::/64"],
      ["::ffff:192.0.2.7", "192.0.2.7"],
      ["192.0.2.7", "192.0.2.7"],
      ["account:0192ab", "account:0192ab"],
      ["1:2:3", "1:2:3"],
      ["1::2::3", "1::2::3"],
    ];
    for (const [ip, key] of cases) expect(sourceKey(ip), ip).toBe(key);
  });

  it("one IPv6 /64 is one source: rotating addresses inside it gains nothing", async () => {
    const { limits } = setup();
    const outcomes: string[] = [];
    for (let i = 1; i <= 11; i++) outcomes.push(await refusedCode(limits.passwordGuess(tenant, "lookup-f", `2001:db8:aa:bb::${i.toString(16)}`)));
    expect(outcomes).toEqual([...Array(10).fill("allowed"), "resource_exhausted"]);
    expect(await refusedCode(limits.passwordGuess(tenant, "lookup-f", "2001:db8:aa:bc::1"))).toBe("allowed");
  });
});
