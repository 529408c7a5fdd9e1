// The SMS and guest budgets of issue 10 end to end, over grpc-js and Connect, on
// every backend, with the SMS webhook provider playing the operator: a tenant's
// daily SMS budget (past it SendSignInCode is refused alike for a known and an
// unknown number, and nothing is sent), SMS code requests per client IP, and
// guest sign-ins per client IP — each refusal ResourceExhausted RATE_LIMITED with
// google.rpc.RetryInfo, as the other limits (rate-limits.test.ts).
import { Code, type ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { type Caller, createCaller, refusal } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let seq = 0;
const newPhone = () => `+3367${String(Date.now() % 1_000_000).padStart(6, "0")}${seq++ % 10}`;
let ipSeq = 0;
const freshIp = () => `10.79.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;
const codeOf = (body: string) => /^([0-9]{6}) /.exec(body)?.[1] ?? "";

/** The refusal's code, reason and RetryInfo delay (ms). */
function limited(error: ConnectError) {
  const [info] = error.findDetails(RetryInfoSchema);
  const delay = info?.retryDelay ? Number(info.retryDelay.seconds) * 1000 + info.retryDelay.nanos / 1e6 : undefined;
  return { code: error.code, reason: error.findDetails(ErrorInfoSchema)[0]?.reason, delay };
}

describe.each(BACKENDS)("phone and guest budgets on the %s backend", (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" } });
  });
  afterAll(async () => {
    await server?.close();
  });

  /** A new tenant with the default settings but these. */
  async function tenantWith(settings: Record<string, number>): Promise<string> {
    const defaults = (await server.runtime.app.tenants.get("default")).settings;
    return (await server.runtime.app.tenants.create({ name: `budgets ${seq++}`, settings: { ...defaults, ...settings } })).id;
  }

  describe.each(["grpc-js", "connect-json-h1"] as const)("over %s", (protocol) => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller(protocol, server.baseUrl);
    });
    afterAll(() => api.close());

    const from = (tenant: string, ip = freshIp()) => ({ "x-tenant-id": tenant, "x-forwarded-for": ip });
    const sendCode = (tenant: string, phone: string, ip?: string) => api.call(SessionService.method.sendSignInCode, { phone, locale: "en" }, from(tenant, ip));
    const guest = (tenant: string, ip: string) => api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, from(tenant, ip));

    it("past the tenant's daily SMS budget, codes are refused alike for a known and an unknown number, and none is sent", async () => {
      const tenant = await tenantWith({ smsDailyLimit: 3 });
      const known = newPhone();
      await sendCode(tenant, known);
      const first = await server.waitForSms(known);
      const signedIn = await api.call(
        SessionService.method.signIn,
        { method: { case: "phoneCode", value: { phone: known, code: codeOf(first.body) } } },
        from(tenant),
      );
      expect(signedIn.accountId).not.toBe("");
      const others = [newPhone(), newPhone()];
      for (const phone of others) await sendCode(tenant, phone);
      for (const phone of others) await server.waitForSms(phone);

      // The budget is spent: every IP, every number, known or not, gets the same refusal.
      const unknown = newPhone();
      const refusals = [limited(await refusal(sendCode(tenant, known))), limited(await refusal(sendCode(tenant, unknown)))];
      for (const r of refusals) {
        expect(r).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
        expect(r.delay).toBeGreaterThan(0);
        expect(r.delay).toBeLessThanOrEqual(DAY);
      }
      expect(refusals[0]!.reason).toBe(refusals[1]!.reason);

      // Another tenant's budget is its own.
      const elsewhere = newPhone();
      await sendCode(await tenantWith({ smsDailyLimit: 3 }), elsewhere);
      await server.waitForSms(elsewhere);
      expect(server.sms!.delivered.filter((s) => s.to === known)).toHaveLength(1);
      expect(server.sms!.delivered.filter((s) => s.to === unknown)).toEqual([]);
    });

    it("refuses SMS code requests past the per-IP budget with RetryInfo; another IP is not refused", async () => {
      const tenant = await tenantWith({ smsPerIpLimit: 2 });
      const ip = freshIp();
      const phones = [newPhone(), newPhone(), newPhone()];
      await sendCode(tenant, phones[0]!, ip);
      await sendCode(tenant, phones[1]!, ip);
      const refused = limited(await refusal(sendCode(tenant, phones[2]!, ip)));
      expect(refused).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
      expect(refused.delay).toBeGreaterThan(0);
      expect(refused.delay).toBeLessThanOrEqual(HOUR);
      await sendCode(tenant, phones[2]!, freshIp());
      expect((await server.waitForSms(phones[2]!)).to).toBe(phones[2]);
    });

    it("refuses guest sign-ins past the per-IP budget with RetryInfo; another IP still gets a guest", async () => {
      const tenant = await tenantWith({ guestSignInPerIpLimit: 2 });
      const ip = freshIp();
      expect((await guest(tenant, ip)).sessionToken).not.toBe("");
      expect((await guest(tenant, ip)).sessionToken).not.toBe("");
      const refused = limited(await refusal(guest(tenant, ip)));
      expect(refused).toMatchObject({ code: Code.ResourceExhausted, reason: "RATE_LIMITED" });
      expect(refused.delay).toBeGreaterThan(0);
      expect(refused.delay).toBeLessThanOrEqual(HOUR);
      expect((await guest(tenant, freshIp())).sessionToken).not.toBe("");
    });
  });
});
