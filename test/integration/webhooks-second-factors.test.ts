// Second factors emit events like every other change to an account: enrolling
// an authenticator app, regenerating recovery codes and removing the factor
// each reach a real local webhook receiver once, in order, signed, carrying
// ids and kinds only (never the TOTP secret nor a recovery code).
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `mfa-events.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe.each(BACKENDS)("second-factor events on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let receiverServer: Server;
  let receiverUrl = "";
  const received: { headers: IncomingHttpHeaders; body: string; payload: { type: string; data: Record<string, unknown> } }[] = [];
  const rootEmail = uniqueEmail("root");

  beforeAll(async () => {
    receiverServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        received.push({ headers: req.headers, body, payload: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiverServer.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiverServer.address() as AddressInfo).port}/mfa`;
    server = await startTestServer(backend, { env: { DEVELOPMENT_MODE: "true" }, runtime: { webhookPollMs: 50 } });
    api = createCaller("connect-json-h1", server.baseUrl);
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await new Promise<void>((resolve) => (receiverServer ? receiverServer.close(() => resolve()) : resolve()));
  });

  it("enrollment, regenerated recovery codes and removal each reach the receiver once, in order", async () => {
    const rootSession = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } });
    const root = bearer(rootSession.sessionToken);
    const tenantId = (await api.call(AdminService.method.createTenant, { name: `Mfa ${seq++}` }, root)).tenant!.id;
    const types = ["second_factor.enrolled", "recovery_codes.regenerated", "second_factor.removed"];
    const hook = await api.call(AdminService.method.createWebhook, { url: receiverUrl, eventTypes: types, tenantId }, root);

    const inTenant = { "x-tenant-id": tenantId };
    const email = uniqueEmail("person");
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, inTenant);
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) }, inTenant);
    const session = bearer(verified.sessionToken);
    const started = await api.call(AccountService.method.startTotpEnrollment, {}, session);
    const confirmed = await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, session);
    const factorId = confirmed.factor!.id;
    const challenge = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }, inTenant);
    const stepped = await api.call(
      SessionService.method.completeSecondFactor,
      { challenge: challenge.secondFactorChallenge!.challenge, code: { case: "totpCode", value: appCode(started.secret, 1) } },
      inTenant,
    );
    const aal2 = bearer(stepped.sessionToken);
    const regenerated = await api.call(AccountService.method.regenerateRecoveryCodes, {}, aal2);
    await api.call(AccountService.method.removeSecondFactor, { factorId }, aal2);

    const deadline = Date.now() + 20_000;
    while (received.length < types.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // nothing more arrives
    expect(received.map((d) => d.payload.type)).toEqual(types);
    for (const delivery of received) {
      new StandardWebhook(hook.secret).verify(delivery.body, {
        "webhook-id": String(delivery.headers["webhook-id"]),
        "webhook-timestamp": String(delivery.headers["webhook-timestamp"]),
        "webhook-signature": String(delivery.headers["webhook-signature"]),
      });
      expect(delivery.payload.data).toMatchObject({ account_id: verified.accountId, tenant_id: tenantId });
      expect(delivery.body).not.toContain(started.secret);
      for (const code of [...confirmed.recoveryCodes, ...regenerated.recoveryCodes]) expect(delivery.body).not.toContain(code);
      expect(delivery.body).not.toContain(email);
    }
    expect(received[0]!.payload.data).toMatchObject({ factor_id: factorId, kind: "totp" });
    expect(received[2]!.payload.data).toMatchObject({ factor_id: factorId });
  });
});
