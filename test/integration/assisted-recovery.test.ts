// Customer service end to end over a real server on every backend: after
// identifying a person by phone, an admin changes their email address (the old
// address is told, the new one must verify unless attested, every session ends)
// or issues a one-time temporary password that SignIn accepts only together with
// a new one — each with the mails received and the audit trail entries, refused
// against admins unless the caller is a super admin, and rate limited — or
// removes the second factors of someone who lost their device.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, refusal, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";
const ROOT_PASSWORD = "operator's own long passphrase 42";
let seq = 0;
const uniqueEmail = (tag: string) => `assist.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function reasonOf(call: Promise<unknown>): Promise<string> {
  const e = await refusal(call);
  return `${Code[e.code]} ${e.findDetails(ErrorInfoSchema)[0]?.reason ?? ""}`.trim();
}

describe.each(BACKENDS)("admin-assisted recovery on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let grpc: Caller;
  let root: Record<string, string>;
  let admin: Record<string, string>;
  let adminId: string;

  const signIn = (email: string, password: string, newPassword = "") =>
    api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password, newPassword } } });
  const validate = (token: string) => grpc.call(SessionService.method.validateSession, { sessionToken: token });

  async function person(tag: string) {
    const email = uniqueEmail(tag);
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    return { email, accountId: verified.accountId, token: verified.sessionToken };
  }

  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("connect-json-h1", server.baseUrl);
    grpc = createCaller("grpc-js", server.baseUrl);
    const rootEmail = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
    root = bearer((await signIn(rootEmail, ROOT_PASSWORD)).sessionToken);
    const adminEmail = uniqueEmail("support");
    adminId = (await api.call(AdminService.method.createUser, { email: adminEmail, password: PASSWORD, role: Role.ADMIN }, root)).account!.id;
    admin = bearer((await signIn(adminEmail, PASSWORD)).sessionToken);
  });
  afterAll(async () => {
    api?.close();
    grpc?.close();
    await server?.close();
  });

  it("changes a person's email address: the old address is told, the new one must verify, every session ends", async () => {
    const ada = await person("ada");
    const second = (await signIn(ada.email, PASSWORD)).sessionToken;
    const newEmail = uniqueEmail("ada-new");
    const change = (reason: string) => api.call(AdminService.method.changeUserEmail, { accountId: ada.accountId, newEmail, reason }, admin);

    expect(await reasonOf(change(" "))).toBe("InvalidArgument REASON_REQUIRED");
    const { account } = await change("ticket 4411: caller confirmed date of birth and last invoice");
    expect(account).toMatchObject({ email: newEmail, emailVerified: false });

    // Every session ended, at once (the fast path and its cache included).
    for (const token of [ada.token, second]) expect(await codeOf(validate(token))).toBe(Code.Unauthenticated);
    // The old address is told (naming the new one masked); the new one gets a verification link.
    const notice = await server.waitForMail(ada.email, (m) => /email address was changed/.test(m.subject));
    expect(notice.text).toMatch(/assist\.\*\*\*@example\.test|a\*\*\*@example\.test/);
    const link = await server.waitForMail(newEmail, (m) => m.text.includes("verify-email?token="));
    // Until the link is opened, the new address does not sign in; the old one never again.
    expect(await reasonOf(signIn(newEmail, PASSWORD))).toBe("FailedPrecondition IDENTITY_UNVERIFIED");
    expect(await reasonOf(signIn(ada.email, PASSWORD))).toBe("Unauthenticated INVALID_CREDENTIALS");
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken(link.text) });
    expect(verified.accountId).toBe(ada.accountId);
    expect((await signIn(newEmail, PASSWORD)).accountId).toBe(ada.accountId);

    const audit = await server.runtime.app.audit.list({
      tenantId: "default",
      target: `account:${ada.accountId}`,
      action: "user.change_email",
      pageSize: 10,
      pageToken: "",
    });
    expect(audit.events.map((e) => [e.actor, e.outcome, e.reason])).toEqual([
      [`account:${adminId}`, "REASON_REQUIRED", " "],
      [`account:${adminId}`, "success", "ticket 4411: caller confirmed date of birth and last invoice"],
    ]);
  });

  it("an attested address is verified at once; an admin's account is changed only by a super admin", async () => {
    const other = uniqueEmail("other-admin");
    const otherId = (await api.call(AdminService.method.createUser, { email: other, password: PASSWORD, role: Role.ADMIN }, root)).account!.id;
    const newEmail = uniqueEmail("other-admin-new");
    const request = { accountId: otherId, newEmail, reason: "identified by phone", attestVerified: true };
    expect(await reasonOf(api.call(AdminService.method.changeUserEmail, request, admin))).toBe("PermissionDenied ACCOUNT_ROLE_TOO_HIGH");
    expect(await reasonOf(api.call(AdminService.method.issueTemporaryPassword, { accountId: otherId, reason: "r" }, admin))).toBe(
      "PermissionDenied ACCOUNT_ROLE_TOO_HIGH",
    );
    const { account } = await api.call(AdminService.method.changeUserEmail, request, root);
    expect(account).toMatchObject({ email: newEmail, emailVerified: true });
    expect((await signIn(newEmail, PASSWORD)).accountId).toBe(otherId);
    await server.waitForMail(other, (m) => /email address was changed/.test(m.subject));
  });

  it("a temporary password signs in only with a new password, once; the person is told; every session ends", async () => {
    const bob = await person("bob");
    expect(await reasonOf(api.call(AdminService.method.issueTemporaryPassword, { accountId: bob.accountId, reason: "" }, admin))).toBe(
      "InvalidArgument REASON_REQUIRED",
    );
    const issued = await api.call(AdminService.method.issueTemporaryPassword, { accountId: bob.accountId, reason: "ticket 4412: identified by phone" }, admin);
    expect(issued.temporaryPassword).toMatch(/^[a-zA-Z2-9]{20,}$/);
    expect(await codeOf(validate(bob.token))).toBe(Code.Unauthenticated);
    expect(await reasonOf(signIn(bob.email, PASSWORD))).toBe("Unauthenticated INVALID_CREDENTIALS");

    // The temporary password alone: told to change it, no session.
    expect(await reasonOf(signIn(bob.email, issued.temporaryPassword))).toBe("FailedPrecondition PASSWORD_CHANGE_REQUIRED");
    expect(await reasonOf(signIn(bob.email, issued.temporaryPassword, "short"))).toMatch(/^InvalidArgument/);
    const chosen = "a brand new passphrase of mine";
    const signedIn = await signIn(bob.email, issued.temporaryPassword, chosen);
    expect((await validate(signedIn.sessionToken)).accountId).toBe(bob.accountId);
    // Used once: the temporary password is gone; the new one signs in plainly.
    expect(await reasonOf(signIn(bob.email, issued.temporaryPassword, "yet another passphrase here"))).toBe("Unauthenticated INVALID_CREDENTIALS");
    expect((await signIn(bob.email, chosen)).accountId).toBe(bob.accountId);

    const notice = await server.waitForMail(bob.email, (m) => /password was changed/.test(m.subject));
    expect(notice.text).not.toContain(issued.temporaryPassword);
    const audit = await server.runtime.app.audit.list({
      tenantId: "default",
      target: `account:${bob.accountId}`,
      action: "user.issue_temporary_password",
      pageSize: 10,
      pageToken: "",
    });
    expect(audit.events.filter((e) => e.outcome === "success").map((e) => [e.actor, e.reason])).toEqual([
      [`account:${adminId}`, "ticket 4412: identified by phone"],
    ]);
    expect(JSON.stringify(await server.rawRows("accounts"))).not.toContain(issued.temporaryPassword);
  });

  it("is rate limited per account", async () => {
    const carol = await person("carol");
    for (let i = 0; i < 3; i++) await api.call(AdminService.method.issueTemporaryPassword, { accountId: carol.accountId, reason: `attempt ${i}` }, admin);
    expect(await reasonOf(api.call(AdminService.method.issueTemporaryPassword, { accountId: carol.accountId, reason: "attempt 4" }, admin))).toBe(
      "ResourceExhausted RATE_LIMITED",
    );
  });

  it("lost device: removes every second factor and the recovery codes, ends every session, tells the person; same rules as the others", async () => {
    const dan = await person("dan");
    const started = await api.call(AccountService.method.startTotpEnrollment, {}, bearer(dan.token));
    const confirmed = await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, bearer(dan.token));
    expect((await signIn(dan.email, PASSWORD)).secondFactorChallenge).toBeDefined();
    const reset = (reason: string, caller = admin, accountId = dan.accountId) =>
      api.call(AdminService.method.resetSecondFactors, { accountId, reason }, caller);

    expect(await reasonOf(reset(" "))).toBe("InvalidArgument REASON_REQUIRED");
    expect((await reset("ticket 4413: phone lost, identified by date of birth")).removedFactorCount).toBe(1);

    // Every session ended; the password alone signs in now; no factor or code is left.
    expect(await codeOf(validate(dan.token))).toBe(Code.Unauthenticated);
    const plain = await signIn(dan.email, PASSWORD);
    expect(plain.secondFactorChallenge).toBeUndefined();
    expect((await validate(plain.sessionToken)).accountId).toBe(dan.accountId);
    const listed = await api.call(AccountService.method.listSecondFactors, {}, bearer(plain.sessionToken));
    expect([listed.factors, listed.recoveryCodesRemaining]).toEqual([[], 0]);
    expect((await server.rawRows("recovery_codes")).filter((r) => r.account_id === dan.accountId)).toEqual([]);
    expect((await server.rawRows("second_factors")).filter((r) => r.account_id === dan.accountId)).toEqual([]);
    // The removal is an event (webhooks), the person is told by mail, the audit trail keeps the reason.
    const events = (await server.rawRows("events")).filter((e) => e.account_id === dan.accountId).map((e) => e.type);
    expect(events.filter((t) => t === "second_factor.removed")).toHaveLength(1);
    const notice = await server.waitForMail(dan.email, (m) => /second factor was removed/.test(m.subject));
    for (const code of confirmed.recoveryCodes) expect(notice.text).not.toContain(code);
    const audit = await server.runtime.app.audit.list({
      tenantId: "default",
      target: `account:${dan.accountId}`,
      action: "user.reset_second_factors",
      pageSize: 10,
      pageToken: "",
    });
    expect(audit.events.map((e) => [e.actor, e.outcome, e.reason])).toEqual([
      [`account:${adminId}`, "REASON_REQUIRED", " "],
      [`account:${adminId}`, "success", "ticket 4413: phone lost, identified by date of birth"],
    ]);

    // An admin's factors: a super admin's call only.
    const other = uniqueEmail("mfa-admin");
    const otherId = (await api.call(AdminService.method.createUser, { email: other, password: PASSWORD, role: Role.ADMIN }, root)).account!.id;
    expect(await reasonOf(reset("identified by phone", admin, otherId))).toBe("PermissionDenied ACCOUNT_ROLE_TOO_HIGH");
    expect((await reset("identified by phone", root, otherId)).removedFactorCount).toBe(0);
    // Counted with the other customer-service actions: 3 per account per hour.
    await reset("again 2");
    await reset("again 3");
    expect(await reasonOf(reset("again 4"))).toBe("ResourceExhausted RATE_LIMITED");
  });
});
