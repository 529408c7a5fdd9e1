// Second factors end to end, over real servers on each backend (embedded, and
// MariaDB + Redis), with a real gRPC client (@grpc/grpc-js) and a Connect
// client: TOTP enrollment → sign-in challenge → code → AAL2 session; a replayed
// code refused; a recovery code once; step-up refused at AAL1 and allowed at
// AAL2; a tenant requiring a second factor of admins; no secret or recovery
// code in clear in the database; the export lists factors without secrets;
// erasure removes them; the audit trail records enrollments and removals.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { AssuranceLevel, Role, SecondFactorKind } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { BACKENDS } from "../support/backends.ts";
import { type Caller, createCaller, type Protocol, refusal } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { lastCode, queuedMessages } from "../support/sms-outbox.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
let seq = 0;

async function expectRefused(call: Promise<unknown>, code: Code, reason?: string) {
  const error = await refusal(call);
  expect(Code[error.code], error.rawMessage).toBe(Code[code]);
  if (reason !== undefined) expect(error.findDetails(ErrorInfoSchema)[0]?.reason, error.rawMessage).toBe(reason);
}

describe.each(BACKENDS)("second factors on the %s backend", (backend) => {
  let server: TestServer;
  const callers: Partial<Record<Protocol, Caller>> = {};
  const api = (protocol: Protocol = "grpc-js") => callers[protocol]!;

  beforeAll(async () => {
    server = await startTestServer(backend);
    callers["grpc-js"] = createCaller("grpc-js", server.baseUrl);
    callers["connect-json-h1"] = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    for (const caller of Object.values(callers)) caller.close();
    await server?.close();
  });

  async function verifiedPerson(tag: string) {
    const email = `mfa.${tag}.${Date.now()}.${seq++}@example.test`;
    await api().call(IdentityService.method.signUp, { email, password: PASSWORD });
    const verified = await api().call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    return { email, token: verified.sessionToken, accountId: verified.accountId };
  }

  async function enrolled(tag: string, protocol: Protocol = "grpc-js") {
    const person = await verifiedPerson(tag);
    const started = await api(protocol).call(AccountService.method.startTotpEnrollment, {}, bearer(person.token));
    const confirmed = await api(protocol).call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, bearer(person.token));
    return { ...person, secret: started.secret, recoveryCodes: confirmed.recoveryCodes, factorId: confirmed.factor!.id };
  }

  const signIn = (email: string, protocol: Protocol = "grpc-js") =>
    api(protocol).call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });

  async function aal2(person: { email: string; secret: string }, offset = 1, protocol: Protocol = "grpc-js") {
    const { secondFactorChallenge } = await signIn(person.email, protocol);
    return api(protocol).call(SessionService.method.completeSecondFactor, {
      challenge: secondFactorChallenge!.challenge,
      code: { case: "totpCode", value: appCode(person.secret, offset) },
    });
  }

  it.each(["grpc-js", "connect-json-h1"] as const)(
    "over %s: enrollment → sign-in challenge → code → AAL2 session; a replayed code is refused",
    async (protocol) => {
      const person = await enrolled(`flow.${protocol}`, protocol);
      expect(person.recoveryCodes).toHaveLength(10);
      const first = await signIn(person.email, protocol);
      expect(first.sessionToken).toBe("");
      expect(first.accountId).toBe(person.accountId);
      expect(first.secondFactorChallenge?.kinds).toEqual([SecondFactorKind.TOTP, SecondFactorKind.RECOVERY_CODE]);
      const done = await api(protocol).call(SessionService.method.completeSecondFactor, {
        challenge: first.secondFactorChallenge!.challenge,
        code: { case: "totpCode", value: appCode(person.secret, 1) },
      });
      const validated = await api(protocol).call(SessionService.method.validateSession, { sessionToken: done.sessionToken });
      expect(validated.accountId).toBe(person.accountId);
      expect(validated.assuranceLevel).toBe(AssuranceLevel.AAL2);
      // The proofs, in order: the password (about the email identity), then the app's code.
      expect(validated.authenticationMethods.map((m) => m.method)).toEqual(["password", "totp"]);
      expect(validated.authenticationMethods[0]!.identityId).not.toBe("");
      expect(validated.authenticationMethods[1]!.identityId).toBe("");
      const { sessions } = await api(protocol).call(SessionService.method.listSessions, {}, bearer(done.sessionToken));
      expect(sessions.find((s) => s.current)?.assuranceLevel).toBe(AssuranceLevel.AAL2);
      // The code of that step again, with a fresh challenge: refused.
      const again = await signIn(person.email, protocol);
      await expectRefused(
        api(protocol).call(SessionService.method.completeSecondFactor, {
          challenge: again.secondFactorChallenge!.challenge,
          code: { case: "totpCode", value: appCode(person.secret, 1) },
        }),
        Code.Unauthenticated,
        "INVALID_SECOND_FACTOR",
      );
    },
  );

  it("a recovery code works once", async () => {
    const person = await enrolled("recovery");
    const challenge = async () => (await signIn(person.email)).secondFactorChallenge!.challenge;
    const done = await api().call(SessionService.method.completeSecondFactor, {
      challenge: await challenge(),
      code: { case: "recoveryCode", value: person.recoveryCodes[0]! },
    });
    expect(done.recoveryCodesRemaining).toBe(9);
    const validated = await api().call(SessionService.method.validateSession, { sessionToken: done.sessionToken });
    expect(validated.assuranceLevel).toBe(AssuranceLevel.AAL2);
    expect(validated.authenticationMethods.map((m) => m.method)).toEqual(["password", "recovery_code"]);
    await expectRefused(
      api().call(SessionService.method.completeSecondFactor, { challenge: await challenge(), code: { case: "recoveryCode", value: person.recoveryCodes[0]! } }),
      Code.Unauthenticated,
      "INVALID_SECOND_FACTOR",
    );
    expect((await api().call(AccountService.method.listSecondFactors, {}, bearer(done.sessionToken))).recoveryCodesRemaining).toBe(9);
  });

  it.each([
    ["en", "A second factor was added", "A recovery code was used", "A second factor was removed"],
    ["fr", "Un second facteur a été ajouté", "Un code de secours a servi", "Un second facteur a été retiré"],
  ])(
    "mails the person in %s when a factor is added, a recovery code signs in and a factor is removed, never with a secret or code",
    async (locale, added, used, removed) => {
      const email = `mfa.notice.${locale}.${Date.now()}.${seq++}@example.test`;
      await api().call(IdentityService.method.signUp, { email, password: PASSWORD, locale });
      const verified = await api().call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
      const started = await api().call(AccountService.method.startTotpEnrollment, {}, bearer(verified.sessionToken));
      const confirmed = await api().call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, bearer(verified.sessionToken));
      const addedMail = await server.waitForMail(email, (m) => m.subject.startsWith(added));
      expect(`${addedMail.text}${addedMail.html}`).not.toContain(started.secret);

      const { secondFactorChallenge } = await signIn(email);
      const done = await api().call(SessionService.method.completeSecondFactor, {
        challenge: secondFactorChallenge!.challenge,
        code: { case: "recoveryCode", value: confirmed.recoveryCodes[0]! },
      });
      const usedMail = await server.waitForMail(email, (m) => m.subject.startsWith(used));
      expect(`${usedMail.text}${usedMail.html}`).not.toContain(confirmed.recoveryCodes[0]!);

      await api().call(AccountService.method.removeSecondFactor, { factorId: confirmed.factor!.id }, bearer(done.sessionToken));
      await server.waitForMail(email, (m) => m.subject.startsWith(removed));
    },
  );

  it("step-up: refused at AAL1 (PermissionDenied STEP_UP_REQUIRED), allowed at AAL2", async () => {
    const person = await enrolled("stepup");
    const aal1 = bearer(person.token);
    await expectRefused(api().call(AccountService.method.removeSecondFactor, { factorId: person.factorId }, aal1), Code.PermissionDenied, "STEP_UP_REQUIRED");
    await expectRefused(api().call(AccountService.method.regenerateRecoveryCodes, {}, aal1), Code.PermissionDenied, "STEP_UP_REQUIRED");
    await expectRefused(
      api().call(IdentityService.method.changePassword, { currentPassword: PASSWORD, newPassword: `${PASSWORD} anew` }, aal1),
      Code.PermissionDenied,
      "STEP_UP_REQUIRED",
    );
    await expectRefused(
      api().call(IdentityService.method.startEmailChange, { newEmail: `new.${person.email}` }, aal1),
      Code.PermissionDenied,
      "STEP_UP_REQUIRED",
    );
    await expectRefused(api().call(AccountService.method.deleteAccount, { password: PASSWORD }, aal1), Code.PermissionDenied, "STEP_UP_REQUIRED");

    const { sessionToken } = await aal2(person);
    const stepped = bearer(sessionToken);
    expect((await api().call(AccountService.method.regenerateRecoveryCodes, {}, stepped)).recoveryCodes).toHaveLength(10);
    await api().call(IdentityService.method.changePassword, { currentPassword: PASSWORD, newPassword: `${PASSWORD} anew` }, stepped);
    await api().call(IdentityService.method.changePassword, { currentPassword: `${PASSWORD} anew`, newPassword: PASSWORD }, stepped);
    await api().call(AccountService.method.removeSecondFactor, { factorId: person.factorId }, stepped);
    expect(await api().call(AccountService.method.listSecondFactors, {}, stepped)).toMatchObject({ factors: [], recoveryCodesRemaining: 0 });
    // No factor left: the password alone signs in again.
    expect((await signIn(person.email)).sessionToken).not.toBe("");
  });

  it("a tenant requiring a second factor of admins refuses their admin actions below AAL2", async () => {
    const rootEmail = `mfa.root.${Date.now()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const root = bearer((await signIn(rootEmail)).sessionToken);
    const setMinRole = (headers: Record<string, string>, role: Role) =>
      api().call(
        AdminService.method.updateTenant,
        { tenant: { id: DEFAULT_TENANT_ID, settings: { secondFactorMinRole: role } }, updateMask: { paths: ["settings.second_factor_min_role"] } },
        headers,
      );
    await setMinRole(root, Role.ADMIN);
    try {
      await expectRefused(api().call(AdminService.method.getTenant, { tenantId: DEFAULT_TENANT_ID }, root), Code.PermissionDenied, "STEP_UP_REQUIRED");
      await expectRefused(api().call(AdminService.method.listUsers, { reason: "audit" }, root), Code.PermissionDenied, "STEP_UP_REQUIRED");
      // A person (USER) is not concerned.
      const person = await verifiedPerson("plain");
      expect((await signIn(person.email)).sessionToken).not.toBe("");
      // Customer service too: resetting someone's factors needs the caller's own.
      const reset = (headers: Record<string, string>) =>
        api().call(AdminService.method.resetSecondFactors, { accountId: person.accountId, reason: "lost phone, identified by phone" }, headers);
      await expectRefused(reset(root), Code.PermissionDenied, "STEP_UP_REQUIRED");
      // The admin enrolls at AAL1, signs in with the factor, and may act.
      const started = await api().call(AccountService.method.startTotpEnrollment, {}, root);
      await api().call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, root);
      const { sessionToken } = await aal2({ email: rootEmail, secret: started.secret });
      const { users } = await api().call(AdminService.method.listUsers, { reason: "audit" }, bearer(sessionToken));
      expect(users.map((u) => u.id)).toContain(person.accountId);
      expect((await reset(bearer(sessionToken))).removedFactorCount).toBe(0);
      await setMinRole(bearer(sessionToken), Role.UNSPECIFIED);
    } finally {
      await server.runtime.app.tenants.update(DEFAULT_TENANT_ID, (t) => ({ name: t.name, settings: { ...t.settings, secondFactorMinRole: 0 } }));
    }
  });

  it("keeps no TOTP secret or recovery code in clear; the export lists factors without them; audit records enrollment and removal; erasure removes the rows", async () => {
    const person = await enrolled("rest");
    const rows = JSON.stringify([await server.rawRows("second_factors"), await server.rawRows("recovery_codes")]);
    expect(rows).toContain(person.accountId);
    expect(rows).not.toContain(person.secret);
    for (const code of person.recoveryCodes) {
      expect(rows).not.toContain(code);
      expect(rows).not.toContain(code.replace("-", ""));
    }
    const { sessionToken } = await aal2(person);

    // The export: the factor's id, kind and times, the count of codes; never the secret or a code.
    const parts: Array<{ section: string; json: string }> = [];
    const client = (await import("@connectrpc/connect")).createClient(
      AccountService,
      (await import("@connectrpc/connect-node")).createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
    );
    for await (const part of client.exportAccountData({}, { headers: bearer(sessionToken) })) parts.push(part);
    const section = parts.find((p) => p.section === "second_factors")!;
    const exported = JSON.parse(section.json) as { records: Array<Record<string, unknown>>; recoveryCodesRemaining: number };
    expect(exported.records).toEqual([expect.objectContaining({ id: person.factorId, kind: "TOTP" })]);
    expect(exported.recoveryCodesRemaining).toBe(10);
    const text = parts.map((p) => p.json).join("\n");
    expect(text).not.toContain(person.secret);
    for (const code of person.recoveryCodes) expect(text).not.toContain(code);

    await api().call(AccountService.method.removeSecondFactor, { factorId: person.factorId }, bearer(sessionToken));
    const events = (await server.rawRows("audit_events")).filter((e) => e.target === `account:${person.accountId}`).map((e) => [e.action, e.outcome]);
    expect(events).toEqual(
      expect.arrayContaining([
        ["account.second_factor.enrollment_start", "success"],
        ["account.second_factor.enroll", "success"],
        ["account.second_factor.remove", "success"],
      ]),
    );
    // The sign-in completed above with the app is a security event of the account too.
    const signIns = (await server.rawRows("audit_events")).filter(
      (e) => e.target === `account:${person.accountId}` && String(e.action).startsWith("session.second_factor"),
    );
    expect(signIns.map((e) => e.outcome)).toContain("success");
    // The audit rows name the action, never the secret or a code.
    const audit = JSON.stringify(await server.rawRows("audit_events"));
    expect(audit).not.toContain(person.secret);
    for (const code of person.recoveryCodes) expect(audit).not.toContain(code);

    // Enrolled again, then erased: no row of either table is left.
    const started = await api().call(AccountService.method.startTotpEnrollment, {}, bearer(sessionToken));
    await api().call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, bearer(sessionToken));
    const mine = async () => [
      ...(await server.rawRows("second_factors")).filter((r) => r.account_id === person.accountId),
      ...(await server.rawRows("recovery_codes")).filter((r) => r.account_id === person.accountId),
    ];
    expect((await mine()).length).toBe(11);
    await api().call(AccountService.method.deleteAccount, {}, bearer(sessionToken));
    expect(await mine()).toEqual([]);
  });
});

// SMS as a second factor, through the phone identity's code channel: the server
// runs without delivery, and each SMS (and the verification mail) is read from
// its outbox with the service's keys (test/support/sms-outbox.ts).
describe.each(BACKENDS)("SMS as a second factor on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let ipSeq = 0;
  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" }, runtime: { deliver: false, purgeIntervalMs: 0 } });
    api = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  /** A person with a verified email (password), a verified phone and an authenticator app, calling from an IP of their own. */
  async function enrolledWithPhone(tag: string) {
    const n = seq++;
    const ip = `10.88.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;
    const headers = (token?: string) => ({ "x-forwarded-for": ip, ...(token ? bearer(token) : {}) });
    const email = `mfa.sms.${tag}.${Date.now()}.${n}@example.test`;
    const phone = `+3362${String(Date.now() % 1_000_000).padStart(6, "0")}${n % 10}`;
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, headers());
    const [verification] = await queuedMessages(server, "verify_email", email);
    const { sessionToken } = await api.call(IdentityService.method.verifyIdentity, { token: linkToken(verification!.variables.link!) }, headers());
    await api.call(IdentityService.method.addPhone, { phone, locale: "en" }, headers(sessionToken));
    await api.call(IdentityService.method.verifyPhone, { phone, code: await lastCode(server, phone) }, headers(sessionToken));
    const started = await api.call(AccountService.method.startTotpEnrollment, {}, headers(sessionToken));
    await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, headers(sessionToken));
    const identities = (await api.call(IdentityService.method.listIdentities, {}, headers(sessionToken))).identities;
    const { accountId } = await api.call(AccountService.method.getAccount, {}, headers(sessionToken)).then((r) => ({ accountId: r.account!.id }));
    return { email, phone, headers, accountId, phoneIdentityId: identities.find((i) => i.value === phone)!.id };
  }

  it("password, then a code sent by SMS to the verified phone: an AAL2 session recording both; a wrong or reused code is refused", async () => {
    const me = await enrolledWithPhone("flow");
    const signIn = () =>
      api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: me.email, password: PASSWORD } } }, me.headers());
    const first = (await signIn()).secondFactorChallenge!;
    expect(first.kinds).toEqual([SecondFactorKind.TOTP, SecondFactorKind.SMS, SecondFactorKind.RECOVERY_CODE]);
    const sent = await api.call(SessionService.method.sendSecondFactorCode, { challenge: first.challenge }, me.headers());
    expect(sent.phoneHint).toBe(me.phone.slice(-2));
    const code = await lastCode(server, me.phone);
    // Sending the code is a security event of the account (as the sign-in code is), never with the code.
    const sends = (await server.rawRows("audit_events")).filter(
      (e) => e.target === `account:${me.accountId}` && e.action === "session.send_second_factor_code",
    );
    expect(sends.map((e) => e.outcome)).toEqual(["success"]);
    expect(JSON.stringify(sends)).not.toContain(code);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    const complete = (challenge: string, value: string) =>
      api.call(SessionService.method.completeSecondFactor, { challenge, code: { case: "smsCode", value } }, me.headers());
    await expectRefused(complete(first.challenge, wrong), Code.Unauthenticated, "INVALID_SECOND_FACTOR");
    const done = await complete(first.challenge, code);
    const validated = await api.call(SessionService.method.validateSession, { sessionToken: done.sessionToken });
    expect(validated.assuranceLevel).toBe(AssuranceLevel.AAL2);
    expect(validated.authenticationMethods.map((m) => [m.method, m.identityId === me.phoneIdentityId])).toEqual([
      ["password", false],
      ["phone_code", true],
    ]);
    // The code was for that challenge only, and is used up.
    const second = (await signIn()).secondFactorChallenge!;
    await expectRefused(complete(second.challenge, code), Code.Unauthenticated, "INVALID_SECOND_FACTOR");
  });

  it("is not offered after a sign-in by that phone's code (one factor twice), nor without a verified phone", async () => {
    const me = await enrolledWithPhone("phonefirst");
    await api.call(SessionService.method.sendSignInCode, { phone: me.phone, locale: "en" }, me.headers());
    const { secondFactorChallenge } = await api.call(
      SessionService.method.signIn,
      { method: { case: "phoneCode", value: { phone: me.phone, code: await lastCode(server, me.phone) } } },
      me.headers(),
    );
    expect(secondFactorChallenge!.kinds).toEqual([SecondFactorKind.TOTP, SecondFactorKind.RECOVERY_CODE]);
    await expectRefused(
      api.call(SessionService.method.sendSecondFactorCode, { challenge: secondFactorChallenge!.challenge }, me.headers()),
      Code.FailedPrecondition,
      "SMS_SECOND_FACTOR_UNAVAILABLE",
    );
    const refused = (await server.rawRows("audit_events")).filter(
      (e) => e.target === `account:${me.accountId}` && String(e.action).startsWith("session.send_second_factor_code"),
    );
    expect(refused.map((e) => [e.action, e.outcome])).toEqual([["session.send_second_factor_code_failed", "SMS_SECOND_FACTOR_UNAVAILABLE"]]);
    await expectRefused(
      api.call(
        SessionService.method.completeSecondFactor,
        { challenge: secondFactorChallenge!.challenge, code: { case: "smsCode", value: "123456" } },
        me.headers(),
      ),
      Code.FailedPrecondition,
      "SMS_SECOND_FACTOR_UNAVAILABLE",
    );
    await expectRefused(
      api.call(SessionService.method.sendSecondFactorCode, { challenge: "A".repeat(43) }, me.headers()),
      Code.Unauthenticated,
      "CHALLENGE_INVALID",
    );
  });
});
