// Nobody may lock someone else out (issue 9). Strangers hammer wrong passwords
// at a known account, from one address and from many; the owner, from another
// address, still signs in (slower while the account is under attack, never
// refused), changes the password and deletes the account. An owner who shares
// the attacker's address gets in again by completing a password reset. Only
// failures count: the owner signing in again and again is never slowed. And
// every counter belongs to one tenant: exhausting a budget in one tenant
// leaves another's untouched.
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { ACCOUNT_SLOWDOWN_MS } from "../../src/domain/limits.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import type { Received } from "../support/smtp.ts";

const PASSWORD = "correct horse battery staple";
const WRONG = "incorrect horse battery staple";
const NEW_PASSWORD = "quietly orbiting teapot lanterns";
const DAY = 24 * 3_600_000;
/** More guesses than the per-account budget allows in a day (4 × 10): today's lockout needed about 40. */
const GUESSES = 45;
let seq = 0;
const uniqueEmail = (tag: string) => `lockout.${tag}.${Date.now()}.${seq++}@example.test`;
const isReset = (m: Received) => m.text.includes("/reset-password?token=");

/** Polls `check` every 50 ms until it holds or 5 s pass; its last answer. */
async function eventually(check: () => boolean): Promise<boolean> {
  for (const deadline = Date.now() + 5000; !check(); await new Promise((resolve) => setTimeout(resolve, 50))) if (Date.now() > deadline) return false;
  return true;
}

describe.each(BACKENDS)(
  "no lockout by strangers on the %s backend",
  (backend) => {
    let server: TestServer;
    // Just after a UTC midnight: every tier's window, the daily one included, starts afresh there.
    const offset = Math.ceil(Date.now() / DAY) * DAY + 1000 - Date.now();

    /** Clients whose calls come from `ip` (through the trusted proxy), in `tenant` when given, as `token` when given. */
    function from(ip: string, options: { tenant?: string; token?: string } = {}) {
      const transport = createConnectTransport({
        baseUrl: server.baseUrl,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("x-forwarded-for", ip);
            if (options.tenant) req.header.set("x-tenant-id", options.tenant);
            if (options.token) req.header.set("authorization", `Bearer ${options.token}`);
            return next(req);
          },
        ],
      });
      return {
        identity: createClient(IdentityService, transport),
        session: createClient(SessionService, transport),
        account: createClient(AccountService, transport),
      };
    }
    const signIn = (email: string, password: string, ip: string, tenant?: string) =>
      from(ip, tenant ? { tenant } : {}).session.signIn({ method: { case: "emailPassword", value: { email, password } } });

    /** A verified account; signs up from an address of its own. */
    async function person(tag: string): Promise<string> {
      const email = uniqueEmail(tag);
      const { identity } = from(`192.0.2.${++seq % 250}`);
      await identity.signUp({ email, password: PASSWORD });
      await identity.verifyIdentity({ token: linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text) });
      return email;
    }

    /** `GUESSES` wrong passwords at `email` from `ip`, one after another; their answers. */
    async function hammer(email: string, ip: string): Promise<Code[]> {
      const answers: Code[] = [];
      for (let i = 0; i < GUESSES; i++) answers.push(await codeOf(signIn(email, WRONG, ip)));
      return answers;
    }

    beforeAll(async () => {
      server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" }, runtime: { now: () => Date.now() + offset } });
    });
    afterAll(async () => {
      await server?.close();
    });

    it("an attacker hammering from one address is refused there; the owner signs in from another", async () => {
      const owner = await person("one");
      const attacker = "203.0.113.10";
      const answers = await hammer(owner, attacker);
      expect(answers.slice(0, 10)).toEqual(Array(10).fill(Code.Unauthenticated));
      expect(answers.slice(10)).toEqual(Array(GUESSES - 10).fill(Code.ResourceExhausted));
      // No oracle at the attacker's address: the right password gets the same refusal there.
      expect(await codeOf(signIn(owner, PASSWORD, attacker))).toBe(Code.ResourceExhausted);

      // The owner at home: a typo, then the right password.
      const home = "198.51.100.10";
      expect(await codeOf(signIn(owner, WRONG, home))).toBe(Code.Unauthenticated);
      expect((await signIn(owner, PASSWORD, home)).sessionToken).not.toBe("");
    });

    it("only failures count: the owner signing in correctly 3x the account's budget from one address is never refused nor slowed", async () => {
      const owner = await person("again");
      const home = "198.51.100.30";
      const took: number[] = [];
      // 3 × the per-account budget of 10: counted as guesses, the 11th would be refused and the rest slowed.
      for (let i = 0; i < 3 * DEFAULT_TENANT_SETTINGS.signInPerAccountLimit; i++) {
        const started = Date.now();
        expect((await signIn(owner, PASSWORD, home)).sessionToken, `sign-in ${i + 1}`).not.toBe("");
        took.push(Date.now() - started);
      }
      // Slowed answers would take 0.5 s (then 1 s) more past the 10th: the medians (robust to a loaded machine) show none.
      const median = (ms: number[]) => [...ms].sort((a, b) => a - b)[ms.length >> 1]!;
      expect(median(took.slice(20)) - median(took.slice(0, 10))).toBeLessThan(ACCOUNT_SLOWDOWN_MS[0]);
      // Failures from there still count from the full budget.
      const answers: Code[] = [];
      for (let i = 0; i < 11; i++) answers.push(await codeOf(signIn(owner, WRONG, home)));
      expect(answers).toEqual([...Array(10).fill(Code.Unauthenticated), Code.ResourceExhausted]);
    });

    it("attackers spread over many addresses only slow the owner down, by a bounded delay", async () => {
      const owner = await person("many");
      const attackers = Array.from({ length: 15 }, (_, i) => `203.0.113.${100 + i}`);
      const answers: Code[] = [];
      // Each address stays within its own budget (3 guesses): together 45, over every account-wide tier.
      for (let round = 0; round < 3; round++) answers.push(...(await Promise.all(attackers.map((ip) => codeOf(signIn(owner, WRONG, ip))))));
      expect(answers).toEqual(Array(GUESSES).fill(Code.Unauthenticated));

      const started = Date.now();
      expect((await signIn(owner, PASSWORD, "198.51.100.20")).sessionToken).not.toBe("");
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(ACCOUNT_SLOWDOWN_MS.at(-1)! - 50);
      expect(waited).toBeLessThan(ACCOUNT_SLOWDOWN_MS.at(-1)! + 8000);
    });

    it("the owner changes the password and deletes the account while strangers hammer sign-in", async () => {
      const owner = await person("own-rpcs");
      const home = "198.51.100.30";
      const { sessionToken } = await signIn(owner, PASSWORD, home);
      await hammer(owner, "203.0.113.30");

      const mine = from(home, { token: sessionToken });
      await mine.identity.changePassword({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
      await mine.account.deleteAccount({ password: NEW_PASSWORD });
      expect(await codeOf(signIn(owner, NEW_PASSWORD, home))).toBe(Code.Unauthenticated);
    });

    it("an owner behind the attacker's address gets in again by completing a password reset", async () => {
      const owner = await person("reset");
      const shared = "203.0.113.40";
      await hammer(owner, shared);
      expect(await codeOf(signIn(owner, PASSWORD, shared))).toBe(Code.ResourceExhausted);

      const { identity } = from(shared);
      await identity.startPasswordReset({ email: owner });
      await identity.completePasswordReset({ code: linkToken((await server.waitForMail(owner, isReset)).text), newPassword: NEW_PASSWORD });
      expect((await signIn(owner, NEW_PASSWORD, shared)).sessionToken).not.toBe("");
    });

    it("a stranger asking resets for the owner's address spends only their own share of its message budget", async () => {
      const owner = await person("mail");
      const resets = () => server.inbox.filter((m) => m.to.includes(owner) && isReset(m));
      for (let i = 0; i < 10; i++) await from("203.0.113.60").identity.startPasswordReset({ email: owner });
      await eventually(() => resets().length >= 5);
      // The owner, from home: a reset mail arrives, and its link sets the password.
      await from("198.51.100.60").identity.startPasswordReset({ email: owner });
      expect(await eventually(() => resets().length === 6)).toBe(true);
      await from("198.51.100.60").identity.completePasswordReset({ code: linkToken(resets().at(-1)!.text), newPassword: NEW_PASSWORD });
      expect((await signIn(owner, NEW_PASSWORD, "198.51.100.60")).sessionToken).not.toBe("");
    });

    it("counters belong to one tenant: a budget spent in one leaves another's untouched", async () => {
      const settings = { ...DEFAULT_TENANT_SETTINGS, signInPerIpLimit: 3, signInPerAccountLimit: 2 };
      const [a, b] = await Promise.all([
        server.runtime.app.tenants.create({ name: "Tenant A", settings }),
        server.runtime.app.tenants.create({ name: "Tenant B", settings }),
      ]);
      // The source's budget across accounts.
      const ip = "203.0.113.50";
      for (let i = 0; i < 3; i++) expect(await codeOf(signIn(uniqueEmail("tenant"), WRONG, ip, a.id))).toBe(Code.Unauthenticated);
      expect(await codeOf(signIn(uniqueEmail("tenant"), WRONG, ip, a.id))).toBe(Code.ResourceExhausted);
      expect(await codeOf(signIn(uniqueEmail("tenant"), WRONG, ip, b.id))).toBe(Code.Unauthenticated);

      // One address's budget from one source (2, under the source's 3): the same address in another tenant is another account.
      const address = uniqueEmail("both");
      const other = "203.0.113.51";
      expect([await codeOf(signIn(address, WRONG, other, a.id)), await codeOf(signIn(address, WRONG, other, a.id))]).toEqual([
        Code.Unauthenticated,
        Code.Unauthenticated,
      ]);
      expect(await codeOf(signIn(address, WRONG, other, a.id))).toBe(Code.ResourceExhausted);
      expect(await codeOf(signIn(address, WRONG, other, b.id))).toBe(Code.Unauthenticated);
    });
  },
  60_000,
); // attacks are slowed down on purpose: a few seconds per test
