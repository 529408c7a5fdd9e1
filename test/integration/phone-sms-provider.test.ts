// Phone sign-in through a real SMS path: the service delivers its codes to a
// local HTTP server playing the signed webhook provider (which verifies
// X-Signature, test/support/sms-provider.ts), and the person types back the
// code the "phone" received — over grpc-js and Connect, on every backend
// (MariaDB + Redis in CI). A guest adds a phone the same way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityKind } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { type SmsProvider, startSmsProvider } from "../support/sms-provider.ts";

const SECRET = "webhook-secret-for-phone-sign-in-tests-0123456789";
let seq = 0;
const newPhone = () => `+3367${String(Date.now() % 1_000_000).padStart(6, "0")}${seq++ % 10}`;

describe.each(BACKENDS)("phone codes through the SMS webhook on the %s backend", (backend) => {
  let server: TestServer;
  let provider: SmsProvider;

  beforeAll(async () => {
    provider = await startSmsProvider({ kind: "webhook", secret: SECRET });
    server = await startTestServer(backend, {
      env: { TRUSTED_PROXIES: "1", SMS_WEBHOOK_URL: `${provider.url}/sms`, SMS_WEBHOOK_SECRET: SECRET },
      runtime: { purgeIntervalMs: 0 },
    });
  });
  afterAll(async () => {
    await server?.close();
    await provider?.close();
  });

  /** The code in the newest SMS the phone received, waiting up to 10 s for its `nth` (1-based). */
  async function received(phone: string, nth: number): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const sms = provider.delivered.filter((s) => s.to === phone);
      if (sms.length >= nth) return /\b([0-9]{6})\b/.exec(sms[nth - 1]!.body)![1]!;
      if (Date.now() > deadline) throw new Error(`no SMS #${nth} to ${phone} within 10 s`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it.each(["grpc-js", "connect-json-h1"] as const)("over %s: the code the phone received signs up, then signs in; a guest adds a phone", async (protocol) => {
    const api = createCaller(protocol, server.baseUrl);
    const ip = `10.88.${seq++ % 250}.${1 + (Date.now() % 250)}`;
    const headers = (token?: string) => ({ "x-forwarded-for": ip, ...(token ? { authorization: `Bearer ${token}` } : {}) });
    try {
      const phone = newPhone();
      await api.call(SessionService.method.sendSignInCode, { phone, locale: "fr" }, headers());
      const first = await api.call(
        SessionService.method.signIn,
        { method: { case: "phoneCode", value: { phone, code: await received(phone, 1) } } },
        headers(),
      );
      expect(provider.delivered.find((s) => s.to === phone)!.body).toContain("est votre code");
      await api.call(SessionService.method.sendSignInCode, { phone, locale: "en" }, headers());
      const again = await api.call(
        SessionService.method.signIn,
        { method: { case: "phoneCode", value: { phone, code: await received(phone, 2) } } },
        headers(),
      );
      expect(again.accountId).toBe(first.accountId);

      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers());
      const added = newPhone();
      await api.call(IdentityService.method.addPhone, { phone: added }, headers(guest.sessionToken));
      await api.call(IdentityService.method.verifyPhone, { phone: added, code: await received(added, 1) }, headers(guest.sessionToken));
      const { identities } = await api.call(IdentityService.method.listIdentities, {}, headers(guest.sessionToken));
      expect(identities.map((i) => [i.kind, i.value])).toStrictEqual([[IdentityKind.PHONE, added]]);
      // Every request the provider took carried a valid signature (it answers 401 otherwise, and delivers nothing).
      expect(provider.requests.length).toBe(provider.delivered.length);
    } finally {
      api.close();
    }
  });
});
