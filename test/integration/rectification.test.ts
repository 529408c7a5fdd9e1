// Rectification by the person is audited like an admin's: the account's own
// profile, consent, email and password changes each append an event naming
// the account and what kind of change it was — never the new values.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";

describe.each(BACKENDS)("self-service changes are audited on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  it("records profile, push-token, consent and password changes, with fields but not values", async () => {
    const email = `rectify.${Date.now()}@example.test`;
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
    const { accountId, sessionToken } = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    const bearer = { authorization: `Bearer ${sessionToken}` };

    await api.call(AccountService.method.updateAccount, { account: { displayName: "Zelda Quartermain" }, updateMask: { paths: ["display_name"] } }, bearer);
    await api.call(AccountService.method.addPushToken, { pushToken: { deviceId: "phone", platform: "fcm", token: "push-secret-token" } }, bearer);
    await api.call(AccountService.method.updateConsents, { consents: [{ purpose: "marketing", version: "v2", granted: false }] }, bearer);
    await api.call(IdentityService.method.changePassword, { currentPassword: PASSWORD, newPassword: "quietly orbiting teapot lanterns" }, bearer);
    // A refused change is recorded with its reason as the outcome.
    expect(await codeOf(api.call(AccountService.method.updateAccount, { account: {}, updateMask: { paths: ["email"] } }, bearer))).toBe(3);

    const { events } = await server.runtime.app.audit.list({ tenantId: "default", target: `account:${accountId}`, pageSize: 100, pageToken: "" });
    const mine = events.filter((e) => e.actor === `account:${accountId}`).map((e) => [e.action, e.reason, e.outcome]);
    expect(mine).toEqual(
      expect.arrayContaining([
        ["account.update", "fields: display_name", "success"],
        ["account.push_token.add", "", "success"],
        ["consent.update", "marketing=withdrawn", "success"],
        ["identity.password_change", "", "success"],
        ["account.update", "fields: email", expect.stringMatching(/^[A-Z_]+$/)],
      ]),
    );
    const text = JSON.stringify(events);
    for (const secret of ["Zelda", "push-secret-token", "quietly orbiting", email]) expect(text).not.toContain(secret);
  });
});
