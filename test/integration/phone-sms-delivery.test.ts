// Phone sign-in with real SMS delivery (issue 10), over grpc-js and Connect,
// on every backend (MariaDB + Redis in CI): SendSignInCode's code reaches a
// local HTTP server playing the signed-webhook SMS provider (it refuses any
// request whose X-Signature does not verify), and signs in. With the provider
// down, then refusing with 503/429, then back, every code requested meanwhile
// is delivered exactly once and still signs in; the codes never reach the log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { type Caller, createCaller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

let seq = 0;
/** A French mobile number nobody else in this run uses, in E.164. */
const newPhone = () => `+3362${String(Date.now() % 1_000_000).padStart(6, "0")}${seq++ % 10}`;
let ipSeq = 0;
const freshIp = () => `10.78.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;
const codeOf = (body: string) => /^([0-9]{6}) /.exec(body)?.[1] ?? "";

describe.each(BACKENDS)("phone sign-in through the SMS provider on the %s backend", (backend) => {
  let server: TestServer;
  const logLines: string[] = [];

  beforeAll(async () => {
    // Retries a second apart, so an outage of a few seconds is survived within the test.
    server = await startTestServer(backend, {
      env: { TRUSTED_PROXIES: "1", LOG_LEVEL: "trace", OUTBOX_RETRY_BASE_SECONDS: "1", OUTBOX_RETRY_MAX_DELAY_SECONDS: "1" },
      logLines,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  describe.each(["grpc-js", "connect-json-h1"] as const)("over %s", (protocol) => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller(protocol, server.baseUrl);
    });
    afterAll(() => api.close());

    const headers = () => ({ "x-forwarded-for": freshIp() });
    const sendCode = (phone: string, locale = "en") => api.call(SessionService.method.sendSignInCode, { phone, locale }, headers());
    const signIn = (phone: string, code: string) =>
      api.call(SessionService.method.signIn, { method: { case: "phoneCode", value: { phone, code } } }, headers());

    it("the code arrives by SMS, signed, in the asked language, and signs in", async () => {
      const phone = newPhone();
      await sendCode(phone.slice(1), "fr"); // an MSISDN without the plus
      const sms = await server.waitForSms(phone);
      expect(sms.body).toMatch(/^[0-9]{6} est votre code Identity\. Il expire dans 5 minutes\./);
      expect(sms.locale).toBe("fr");
      // The provider answered 2xx only to a request whose signature it verified.
      const request = server.sms!.requests.find((r) => r.raw.includes(phone))!;
      expect(request.headers["x-signature"]).toMatch(/^sha256=[0-9a-f]{64}$/);
      const session = await signIn(phone, codeOf(sms.body));
      expect(session.sessionToken).not.toBe("");
      expect(server.sms!.delivered.filter((s) => s.to === phone)).toHaveLength(1);
    });

    it("the owner of a number someone else tries to add is told by a mail about the phone number, in the account's language", async () => {
      const locale = protocol === "grpc-js" ? "en" : "fr";
      const email = `phone.owner.${Date.now()}.${seq++}@example.test`;
      const from = headers();
      await api.call(IdentityService.method.signUp, { email, password: "correct horse battery staple", locale }, from);
      const link = await server.waitForMail(email, (m) => m.text.includes("token="));
      const owner = await api.call(IdentityService.method.verifyIdentity, { token: linkToken(link.text) }, from);
      const ownerCall = { ...headers(), authorization: `Bearer ${owner.sessionToken}` };
      const phone = newPhone();
      await api.call(IdentityService.method.addPhone, { phone, locale }, ownerCall);
      await api.call(IdentityService.method.verifyPhone, { phone, code: codeOf((await server.waitForSms(phone)).body) }, ownerCall);

      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers());
      await api.call(IdentityService.method.addPhone, { phone, locale: "en" }, { ...headers(), authorization: `Bearer ${guest.sessionToken}` });
      const notice = await server.waitForMail(email, (m) => !m.text.includes("token="));
      if (locale === "en") {
        expect(notice.subject).toBe("Someone tried to add your phone number to another Identity account");
        expect(notice.text).toContain("tried to add a phone number that belongs to your account to their own account. It was not added");
      } else {
        expect(notice.subject).toBe("Quelqu’un a tenté d’ajouter votre numéro de téléphone à un autre compte Identity");
        expect(notice.text).toContain("a tenté d’ajouter à son compte un numéro de téléphone qui appartient au vôtre. Il n’a pas été ajouté");
      }
      // Not the taken-address mail: nothing about an email address or creating an account.
      expect(notice.text).not.toMatch(/email address|create an account|adresse e-mail|créer un compte/i);
      // The number itself is not in the mail (a mail may be read by someone else than the phone's holder).
      expect(notice.text).not.toContain(phone.slice(4));
      expect(server.sms!.delivered.filter((s) => s.to === phone)).toHaveLength(1);
    });

    it("with the provider down, then overloaded, then back: every code is delivered once and signs in", async () => {
      const provider = server.sms!;
      const phones = [newPhone(), newPhone(), newPhone()];
      await provider.stop();
      for (const phone of phones) await sendCode(phone);
      // Each attempt fails (connection refused) and is retried a second later.
      const deadline = Date.now() + 10_000;
      const failures = () => logLines.filter((l) => l.includes("message delivery failed; retrying later") && l.includes("ECONNREFUSED")).length;
      while (failures() < phones.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(failures()).toBeGreaterThanOrEqual(phones.length);
      expect(provider.delivered.filter((s) => phones.includes(s.to))).toEqual([]);

      await provider.start();
      provider.answerNext({ status: 503 }, { status: 429 });
      for (const phone of phones) {
        const sms = await server.waitForSms(phone);
        const session = await signIn(phone, codeOf(sms.body));
        expect(session.accountId).not.toBe("");
      }
      // A few more passes of the worker: nothing goes out twice.
      await new Promise((r) => setTimeout(r, 2_500));
      for (const phone of phones)
        expect(
          provider.delivered.filter((s) => s.to === phone),
          phone,
        ).toHaveLength(1);
      const ids = provider.delivered.filter((s) => phones.includes(s.to)).map((s) => s.messageId);
      expect(new Set(ids).size).toBe(phones.length);
    });
  });

  it("no code and no number reached the log", () => {
    const log = logLines.join("\n");
    expect(logLines.length).toBeGreaterThan(0);
    expect(server.sms!.delivered.length).toBeGreaterThanOrEqual(8);
    expect(log).not.toMatch(/is your Identity code|est votre code/);
    for (const sms of server.sms!.delivered) {
      // As a token of its own (a 13-digit timestamp may hold any 6 digits).
      expect(log).not.toMatch(new RegExp(`(?<![0-9A-Za-z])${codeOf(sms.body)}(?![0-9A-Za-z])`));
      expect(log).not.toContain(sms.to.slice(1));
    }
  });
});
