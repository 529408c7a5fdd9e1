// Second factors in memory: TOTP enrollment, the sign-in challenge, replay,
// recovery codes, step-up and a tenant requiring a second factor of admins.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { AssuranceLevel, Role, SecondFactorKind } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { appCode } from "../support/totp.ts";
import { createServiceHarness, type ServiceHarness } from "./harness.ts";
import { expectRefused, PASSWORD, superAdmin, verifiedPerson } from "./support.ts";

describe("second factors, in memory", () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await createServiceHarness();
  });
  afterAll(() => h?.close());

  const signIn = (email: string) => h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email, password: PASSWORD } } });

  async function enrolled(tag: string) {
    const person = await verifiedPerson(h, tag);
    const account = h.client(AccountService, person.token);
    const started = await account.startTotpEnrollment({});
    const confirmed = await account.confirmTotpEnrollment({ code: appCode(started.secret) });
    return { ...person, secret: started.secret, recoveryCodes: confirmed.recoveryCodes, factorId: confirmed.factor!.id };
  }

  it("enrolls an app: secret, otpauth URI, QR code, then 10 recovery codes once confirmed", async () => {
    const person = await verifiedPerson(h, "enroll");
    const account = h.client(AccountService, person.token);
    const started = await account.startTotpEnrollment({});
    expect(started.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(started.otpauthUri).toBe(
      `otpauth://totp/Default:${encodeURIComponent(person.email)}?issuer=Default&secret=${started.secret}&algorithm=SHA1&digits=6&period=30`,
    );
    expect(started.qrCodeSvg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    // Not a factor until confirmed: sign-in still gives a session.
    expect((await signIn(person.email)).sessionToken).not.toBe("");
    await expectRefused(account.confirmTotpEnrollment({ code: "12345" }), Code.InvalidArgument);
    const wrong = String((Number(appCode(started.secret)) + 1) % 1_000_000).padStart(6, "0");
    await expectRefused(account.confirmTotpEnrollment({ code: wrong }), Code.Unauthenticated, "INVALID_SECOND_FACTOR");
    const confirmed = await account.confirmTotpEnrollment({ code: appCode(started.secret) });
    expect(confirmed.recoveryCodes).toHaveLength(10);
    expect(new Set(confirmed.recoveryCodes).size).toBe(10);
    for (const code of confirmed.recoveryCodes) expect(code).toMatch(/^[a-z2-7]{5}-[a-z2-7]{5}$/);
    expect(confirmed.factor?.kind).toBe(SecondFactorKind.TOTP);
    await expectRefused(account.startTotpEnrollment({}), Code.FailedPrecondition, "TOTP_ALREADY_ENROLLED");
    const listed = await account.listSecondFactors({});
    expect(listed.factors.map((f) => f.id)).toEqual([confirmed.factor!.id]);
    expect(listed.recoveryCodesRemaining).toBe(10);
  });

  it("signs in with a challenge, then a code: an AAL2 session; a replayed code is refused", async () => {
    const person = await enrolled("challenge");
    const first = await signIn(person.email);
    expect(first.sessionToken).toBe("");
    expect(first.secondFactorChallenge?.kinds).toEqual([SecondFactorKind.TOTP, SecondFactorKind.RECOVERY_CODE]);
    const challenge = first.secondFactorChallenge!.challenge;
    // The confirming code's step is used: the same code cannot complete a sign-in.
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(person.secret) } }),
      Code.Unauthenticated,
      "INVALID_SECOND_FACTOR",
    );
    const done = await h
      .client(SessionService)
      .completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(person.secret, 1) }, profileMask: { paths: ["email"] } });
    expect(done.accountId).toBe(person.accountId);
    expect(done.profile?.email).toBe(person.email);
    const validated = await h.client(SessionService).validateSession({ sessionToken: done.sessionToken });
    expect(validated.assuranceLevel).toBe(AssuranceLevel.AAL2);
    // The challenge is used up.
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(person.secret, 1) } }),
      Code.Unauthenticated,
      "CHALLENGE_INVALID",
    );
    // A new challenge, the same code again: refused (each step once).
    const second = (await signIn(person.email)).secondFactorChallenge!.challenge;
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge: second, code: { case: "totpCode", value: appCode(person.secret, 1) } }),
      Code.Unauthenticated,
      "INVALID_SECOND_FACTOR",
    );
    await expectRefused(h.client(SessionService).completeSecondFactor({ challenge: second }), Code.InvalidArgument);
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge: second, code: { case: "smsCode", value: "123456" } }),
      Code.FailedPrecondition,
      "SMS_SECOND_FACTOR_UNAVAILABLE",
    );
  });

  it("ends a pending challenge when the password changes meanwhile (a reset, another device)", async () => {
    const person = await enrolled("pwchange");
    const { challenge } = (await signIn(person.email)).secondFactorChallenge!;
    await h.runtime.durable.accounts.setPasswordHash(person.accountId, "cheap$other$password-hash", Date.now());
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(person.secret, 1) } }),
      Code.Unauthenticated,
      "CHALLENGE_INVALID",
    );
  });

  it("ends a pending challenge with its account's erasure", async () => {
    const person = await enrolled("erased");
    const { challenge } = (await signIn(person.email)).secondFactorChallenge!;
    await h.runtime.app.erasure.erase({ tenantId: DEFAULT_TENANT_ID, accountId: person.accountId, actor: "system", reason: "test" });
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(person.secret, 1) } }),
      Code.Unauthenticated,
      "CHALLENGE_INVALID",
    );
    expect(await h.runtime.durable.secondFactors.list(person.accountId)).toEqual([]);
  });

  it("takes a recovery code once, and at most 5 wrong codes per challenge", async () => {
    const person = await enrolled("recovery");
    const challenge = async () => (await signIn(person.email)).secondFactorChallenge!.challenge;
    const code = person.recoveryCodes[3]!;
    const done = await h
      .client(SessionService)
      .completeSecondFactor({ challenge: await challenge(), code: { case: "recoveryCode", value: code.toUpperCase() } });
    expect(done.recoveryCodesRemaining).toBe(9);
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge: await challenge(), code: { case: "recoveryCode", value: code } }),
      Code.Unauthenticated,
      "INVALID_SECOND_FACTOR",
    );
    const limited = await challenge();
    for (let i = 0; i < 5; i++)
      await expectRefused(
        h.client(SessionService).completeSecondFactor({ challenge: limited, code: { case: "recoveryCode", value: "aaaaa-aaaaa" } }),
        Code.Unauthenticated,
        "INVALID_SECOND_FACTOR",
      );
    await expectRefused(
      h.client(SessionService).completeSecondFactor({ challenge: limited, code: { case: "recoveryCode", value: person.recoveryCodes[0]! } }),
      Code.ResourceExhausted,
      "RATE_LIMITED",
    );
  });

  it("asks for a step-up at AAL1 when the account has a factor, and allows it at AAL2", async () => {
    const person = await enrolled("stepup");
    // The session from before the enrollment is AAL1.
    const aal1 = h.client(AccountService, person.token);
    await expectRefused(aal1.removeSecondFactor({ factorId: person.factorId }), Code.PermissionDenied, "STEP_UP_REQUIRED");
    await expectRefused(aal1.regenerateRecoveryCodes({}), Code.PermissionDenied, "STEP_UP_REQUIRED");
    await expectRefused(aal1.deleteAccount({ password: PASSWORD }), Code.PermissionDenied, "STEP_UP_REQUIRED");
    await expectRefused(
      h.client(IdentityService, person.token).changePassword({ currentPassword: PASSWORD, newPassword: `${PASSWORD} anew` }),
      Code.PermissionDenied,
      "STEP_UP_REQUIRED",
    );
    await expectRefused(
      h.client(IdentityService, person.token).startEmailChange({ newEmail: `new.${person.email}` }),
      Code.PermissionDenied,
      "STEP_UP_REQUIRED",
    );
    const challenge = (await signIn(person.email)).secondFactorChallenge!.challenge;
    const { sessionToken } = await h.client(SessionService).completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(person.secret, 1) } });
    const aal2 = h.client(AccountService, sessionToken);
    const regenerated = await aal2.regenerateRecoveryCodes({});
    expect(regenerated.recoveryCodes).toHaveLength(10);
    expect(regenerated.recoveryCodes).not.toContain(person.recoveryCodes[0]);
    await h.client(IdentityService, sessionToken).startEmailChange({ newEmail: `new.${person.email}` });
    await expectRefused(aal2.removeSecondFactor({ factorId: "01890000-0000-7000-8000-000000000000" }), Code.NotFound, "SECOND_FACTOR_NOT_FOUND");
    await aal2.removeSecondFactor({ factorId: person.factorId });
    expect(await aal2.listSecondFactors({})).toMatchObject({ factors: [], recoveryCodesRemaining: 0 });
    // Without a factor, a password sign-in gives a session again.
    expect((await signIn(person.email)).sessionToken).not.toBe("");
  });

  it("enforces a tenant's 'second factor required for admins' on admin actions", async () => {
    const root = await superAdmin(h);
    const admin = h.client(AdminService, root.token);
    await admin.updateTenant({
      tenant: { id: DEFAULT_TENANT_ID, settings: { secondFactorMinRole: Role.ADMIN } },
      updateMask: { paths: ["settings.second_factor_min_role"] },
    });
    try {
      await expectRefused(admin.listUsers({ reason: "audit" }), Code.PermissionDenied, "STEP_UP_REQUIRED");
      // The admin enrolls (allowed at AAL1), signs in again with the code, and may act.
      const account = h.client(AccountService, root.token);
      const { secret } = await account.startTotpEnrollment({});
      await account.confirmTotpEnrollment({ code: appCode(secret) });
      const email = (await account.getAccount({})).account!.email;
      const challenge = (await signIn(email)).secondFactorChallenge!.challenge;
      const { sessionToken } = await h.client(SessionService).completeSecondFactor({ challenge, code: { case: "totpCode", value: appCode(secret, 1) } });
      expect((await h.client(AdminService, sessionToken).listUsers({ reason: "audit" })).users.length).toBeGreaterThan(0);
      // A USER is not concerned.
      const person = await verifiedPerson(h, "plain");
      await expectRefused(h.client(AdminService, person.token).listUsers({ reason: "audit" }), Code.PermissionDenied, "ROLE_REQUIRED");
      expect((await h.client(AccountService, person.token).getAccount({})).account?.id).toBe(person.accountId);
      await h.client(AdminService, sessionToken).updateTenant({
        tenant: { id: DEFAULT_TENANT_ID, settings: { secondFactorMinRole: Role.UNSPECIFIED } },
        updateMask: { paths: ["settings.second_factor_min_role"] },
      });
    } finally {
      await h.runtime.app.tenants.update(DEFAULT_TENANT_ID, (t) => ({ name: t.name, settings: { ...t.settings, secondFactorMinRole: 0 } }));
    }
  });
});
