// Phone identities and guests end to end (issue 10), over grpc-js and Connect,
// on every backend (MariaDB + Redis in CI): sign-up and sign-in by SMS code;
// codes replayed, expired, for another number or guessed past their tries are
// refused; a guest upgraded by adding a phone keeps its account id and loses
// its guest identity; a phone added to an email account signs in as well as
// the address; identities removed down to the last; a number owned by another
// account cannot be added, and the answer does not tell. The server runs
// without delivery: each SMS is read from its outbox with the service's keys
// (test/support/sms-outbox.ts). Each person calls from a client IP of its own.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AssuranceLevel, IdentityKind } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { type Caller, createCaller, refusal } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { redisDump } from "../support/redis-dump.ts";
import { lastCode, queuedMessages, queuedSms } from "../support/sms-outbox.ts";
import { appCode } from "../support/totp.ts";

const MINUTE = 60_000;
const PASSWORD = "correct horse battery staple";
let seq = 0;
/** A French mobile number nobody else in this run uses, in E.164. */
const newPhone = () => `+3361${String(Date.now() % 1_000_000).padStart(6, "0")}${seq++ % 10}`;
let ipSeq = 0;
const freshIp = () => `10.77.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

/** The code and ErrorInfo reason of a refused call. */
async function reasonOf(promise: Promise<unknown>): Promise<{ code: Code; reason: string | undefined }> {
  const error = await refusal(promise);
  return { code: error.code, reason: error.findDetails(ErrorInfoSchema)[0]?.reason };
}

describe.each(BACKENDS)("phone identities and guests on the %s backend", (backend) => {
  let server: TestServer;
  let offset = 0;
  const now = () => Date.now() + offset;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" }, runtime: { now, deliver: false, purgeIntervalMs: 0 } });
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

    /** Calls from one client IP, with a bearer when given. */
    function person() {
      const ip = freshIp();
      const headers = (token?: string) => ({ "x-forwarded-for": ip, ...(token ? { authorization: `Bearer ${token}` } : {}) });
      const sendCode = (phone: string) => api.call(SessionService.method.sendSignInCode, { phone, locale: "fr" }, headers());
      const signIn = (phone: string, code: string) =>
        api.call(SessionService.method.signIn, { method: { case: "phoneCode", value: { phone, code } } }, headers());
      const identities = async (token: string) => (await api.call(IdentityService.method.listIdentities, {}, headers(token))).identities;
      return { headers, sendCode, signIn, identities };
    }

    it("signs up by code (the first proven use creates the account), then signs in again by code to the same account", async () => {
      const me = person();
      const phone = newPhone();
      // An MSISDN without the plus, as Webcom sends them.
      expect(await me.sendCode(phone.slice(1))).toBeDefined();
      const [sms] = await queuedSms(server, phone);
      expect(sms).toMatchObject({ kind: "phone_code", to: phone, locale: "fr", variables: { minutes: "5" } });
      expect(sms!.variables.code).toMatch(/^[0-9]{6}$/);

      const first = await me.signIn(phone, sms!.variables.code!);
      const [identity] = await me.identities(first.sessionToken);
      expect(identity).toMatchObject({ kind: IdentityKind.PHONE, value: phone, verified: true });
      const valid = await api.call(SessionService.method.validateSession, { sessionToken: first.sessionToken });
      expect(valid.accountId).toBe(first.accountId);
      expect(valid.authenticationMethods.map((m) => [m.method, m.identityId])).toStrictEqual([["phone_code", identity!.id]]);

      await me.sendCode(phone);
      const again = await me.signIn(phone, await lastCode(server, phone));
      expect(again.accountId).toBe(first.accountId);
      expect(await me.identities(again.sessionToken)).toHaveLength(1);
    });

    it("each identity has its own profile, read and replaced through a session signed in with it", async () => {
      const me = person();
      const phone = newPhone();
      await me.sendCode(phone);
      const byPhone = await me.signIn(phone, await lastCode(server, phone));
      expect(await api.call(IdentityService.method.getIdentityProfile, {}, me.headers(byPhone.sessionToken))).toMatchObject({ profile: {} });
      const updated = await api.call(
        IdentityService.method.updateIdentityProfile,
        { profile: { age: 42, zipcode: "22300" } },
        me.headers(byPhone.sessionToken),
      );
      const [phoneIdentity] = await me.identities(byPhone.sessionToken);
      expect(updated).toMatchObject({ identityId: phoneIdentity!.id, profile: { age: 42, zipcode: "22300" } });
      expect((await api.call(IdentityService.method.getIdentityProfile, {}, me.headers(byPhone.sessionToken))).profile).toStrictEqual({
        age: 42,
        zipcode: "22300",
      });
      // A guest's session has its own identity, with its own (empty) profile.
      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, me.headers());
      expect((await api.call(IdentityService.method.getIdentityProfile, {}, me.headers(guest.sessionToken))).profile).toStrictEqual({});
      // Bad profiles name the field.
      const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]));
      const refused = await refusal(api.call(IdentityService.method.updateIdentityProfile, { profile: tooMany }, me.headers(byPhone.sessionToken)));
      expect(refused.code).toBe(Code.InvalidArgument);
      expect(refused.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toStrictEqual(["profile"]);
    });

    it("a phone code is a first factor: an account with an authenticator app answers its challenge, and the session records both", async () => {
      const me = person();
      const phone = newPhone();
      await me.sendCode(phone);
      const signedUp = await me.signIn(phone, await lastCode(server, phone));
      const started = await api.call(AccountService.method.startTotpEnrollment, {}, me.headers(signedUp.sessionToken));
      await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret, 0, now()) }, me.headers(signedUp.sessionToken));

      await me.sendCode(phone);
      const challenged = await me.signIn(phone, await lastCode(server, phone));
      expect(challenged.sessionToken).toBe("");
      const done = await api.call(
        SessionService.method.completeSecondFactor,
        { challenge: challenged.secondFactorChallenge!.challenge, code: { case: "totpCode", value: appCode(started.secret, 1, now()) } },
        me.headers(),
      );
      const valid = await api.call(SessionService.method.validateSession, { sessionToken: done.sessionToken });
      expect(valid.accountId).toBe(signedUp.accountId);
      expect(valid.assuranceLevel).toBe(AssuranceLevel.AAL2);
      const [phoneIdentity] = await me.identities(done.sessionToken);
      expect(valid.authenticationMethods.map((m) => [m.method, m.identityId])).toStrictEqual([
        ["phone_code", phoneIdentity!.id],
        ["totp", ""],
      ]);
    });

    it("refuses a code replayed, expired, sent to another number, or guessed past its tries", async () => {
      const me = person();
      const [phone, other] = [newPhone(), newPhone()];
      const refused = { code: Code.InvalidArgument, reason: "CODE_INVALID" };

      await me.sendCode(phone);
      const code = await lastCode(server, phone);
      await me.signIn(phone, code);
      expect(await reasonOf(me.signIn(phone, code))).toStrictEqual(refused); // replayed

      await me.sendCode(phone);
      const expiring = await lastCode(server, phone);
      offset += 5 * MINUTE + 1000;
      expect(await reasonOf(me.signIn(phone, expiring))).toStrictEqual(refused); // expired

      await me.sendCode(other);
      expect(await reasonOf(me.signIn(phone, await lastCode(server, other)))).toStrictEqual(refused); // another number's

      await me.sendCode(phone);
      const right = await lastCode(server, phone);
      const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
      for (let i = 0; i < 5; i++) expect(await reasonOf(me.signIn(phone, wrong))).toStrictEqual(refused);
      expect(await reasonOf(me.signIn(phone, right))).toStrictEqual(refused); // the code is gone after 5 wrong tries
      // A malformed code names its field.
      expect(await reasonOf(me.signIn(phone, "12345"))).toMatchObject({ code: Code.InvalidArgument });
    });

    it("a guest upgraded by adding a phone keeps its account id; its guest identity is gone", async () => {
      const me = person();
      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, me.headers());
      const [guestIdentity] = await me.identities(guest.sessionToken);
      expect(guestIdentity).toMatchObject({ kind: IdentityKind.GUEST, verified: true });
      // Refused while the call carries a bearer (Webcom).
      expect(await reasonOf(api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, me.headers(guest.sessionToken)))).toStrictEqual({
        code: Code.FailedPrecondition,
        reason: "GUEST_WHILE_SIGNED_IN",
      });

      const phone = newPhone();
      await api.call(IdentityService.method.addPhone, { phone }, me.headers(guest.sessionToken));
      await api.call(IdentityService.method.verifyPhone, { phone, code: await lastCode(server, phone) }, me.headers(guest.sessionToken));
      const after = await me.identities(guest.sessionToken);
      expect(after.map((i) => [i.kind, i.value])).toStrictEqual([[IdentityKind.PHONE, phone]]);

      // Signing in by the phone reaches the same account.
      await me.sendCode(phone);
      expect((await me.signIn(phone, await lastCode(server, phone))).accountId).toBe(guest.accountId);
    });

    it("a guest upgraded by SignUp with its bearer: verified through the link, the same account id, the guest identity gone", async () => {
      const me = person();
      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, me.headers());
      const email = `upgrade.${protocol}.${Date.now()}.${seq++}@example.test`;
      await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, me.headers(guest.sessionToken));
      // Nothing attached before the link is opened.
      expect((await me.identities(guest.sessionToken)).map((i) => i.kind)).toStrictEqual([IdentityKind.GUEST]);
      const [verification] = await queuedMessages(server, "verify_email", email);
      const token = new URL(verification!.variables.link!).searchParams.get("token")!;
      const verified = await api.call(IdentityService.method.verifyIdentity, { token }, me.headers());
      expect(verified.accountId).toBe(guest.accountId);

      const after = await me.identities(verified.sessionToken);
      expect(after.map((i) => [i.kind, i.value, i.verified])).toStrictEqual([[IdentityKind.EMAIL, email, true]]);
      const account = await api.call(AccountService.method.getAccount, {}, me.headers(verified.sessionToken));
      expect([account.account?.email, account.account?.emailVerified]).toStrictEqual([email, true]);
      // The address and the password chosen at sign-up sign in to the same account.
      const byEmail = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }, me.headers());
      expect(byEmail.accountId).toBe(guest.accountId);
      // The link is single use.
      expect((await refusal(api.call(IdentityService.method.verifyIdentity, { token }, me.headers()))).code).toBe(Code.InvalidArgument);
    });

    it("SignUp with a bearer for an address another account holds: the same answer, no link, never moved", async () => {
      const owner = person();
      const email = `held.${protocol}.${Date.now()}.${seq++}@example.test`;
      await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, owner.headers());
      const [verification] = await queuedMessages(server, "verify_email", email);
      await api.call(IdentityService.method.verifyIdentity, { token: new URL(verification!.variables.link!).searchParams.get("token")! }, owner.headers());

      const other = person();
      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, other.headers());
      const free = `free.${protocol}.${Date.now()}.${seq++}@example.test`;
      const answers = [
        await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, other.headers(guest.sessionToken)),
        await api.call(IdentityService.method.signUp, { email: free, password: PASSWORD }, other.headers(guest.sessionToken)),
      ];
      expect(answers[0]).toStrictEqual(answers[1]);
      expect(await queuedMessages(server, "verify_email", email)).toHaveLength(1); // only the owner's own, earlier
      expect(await queuedMessages(server, "verify_email", free)).toHaveLength(1);
      expect((await other.identities(guest.sessionToken)).map((i) => i.kind)).toStrictEqual([IdentityKind.GUEST]);
      const byEmail = await api.call(
        SessionService.method.signIn,
        { method: { case: "emailPassword", value: { email, password: PASSWORD } } },
        owner.headers(),
      );
      expect(byEmail.accountId).not.toBe(guest.accountId);
    });

    it("a phone added to an email account signs in as well as the address; identities go down to the last, which stays", async () => {
      const me = person();
      const email = `phone.${protocol}.${Date.now()}.${seq++}@example.test`;
      await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, me.headers());
      const [verification] = await queuedMessages(server, "verify_email", email);
      const token = new URL(verification!.variables.link!).searchParams.get("token")!;
      const verified = await api.call(IdentityService.method.verifyIdentity, { token }, me.headers());

      const phone = newPhone();
      await api.call(IdentityService.method.addPhone, { phone, locale: "en" }, me.headers(verified.sessionToken));
      const [sms] = await queuedSms(server, phone);
      expect(sms!.locale).toBe("en");
      await api.call(IdentityService.method.verifyPhone, { phone, code: sms!.variables.code! }, me.headers(verified.sessionToken));

      // Someone else trying to add the number: no code, the owner told by mail (a request row under the owner's account).
      const other = person();
      const otherGuest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, other.headers());
      const smsBefore = (await queuedSms(server, phone)).length;
      await api.call(IdentityService.method.addPhone, { phone }, other.headers(otherGuest.sessionToken));
      expect(await queuedSms(server, phone)).toHaveLength(smsBefore);
      expect((await server.rawRows("outbox")).filter((r) => r.kind === "phone_existing" && r.account_id === verified.accountId)).toHaveLength(1);

      await me.sendCode(phone);
      const byPhone = await me.signIn(phone, await lastCode(server, phone));
      const byEmail = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }, me.headers());
      expect(byPhone.accountId).toBe(verified.accountId);
      expect(byEmail.accountId).toBe(verified.accountId);

      const [emailIdentity, phoneIdentity] = await me.identities(byPhone.sessionToken);
      expect([emailIdentity!.kind, phoneIdentity!.kind]).toStrictEqual([IdentityKind.EMAIL, IdentityKind.PHONE]);
      await api.call(IdentityService.method.removeIdentity, { identityId: emailIdentity!.id }, me.headers(byPhone.sessionToken));
      expect(
        await reasonOf(api.call(IdentityService.method.removeIdentity, { identityId: phoneIdentity!.id }, me.headers(byPhone.sessionToken))),
      ).toStrictEqual({
        code: Code.FailedPrecondition,
        reason: "LAST_IDENTITY",
      });
      expect((await me.identities(byPhone.sessionToken)).map((i) => i.id)).toStrictEqual([phoneIdentity!.id]);
      // The address no longer signs in; the phone still does.
      expect(
        (await refusal(api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }, me.headers()))).code,
      ).toBe(Code.Unauthenticated);
      await me.sendCode(phone);
      expect((await me.signIn(phone, await lastCode(server, phone))).accountId).toBe(verified.accountId);
    });

    it("a sign-in code asked for and never used reserves nothing: a signed-in person who proves the number gets it", async () => {
      const stranger = person();
      const phone = newPhone();
      await stranger.sendCode(phone); // a pending sign-up now holds the number, unproven
      const me = person();
      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, me.headers());
      await api.call(IdentityService.method.addPhone, { phone }, me.headers(guest.sessionToken));
      await api.call(IdentityService.method.verifyPhone, { phone, code: await lastCode(server, phone) }, me.headers(guest.sessionToken));
      expect((await me.identities(guest.sessionToken)).map((i) => i.value)).toStrictEqual([phone]);
      await me.sendCode(phone);
      expect((await me.signIn(phone, await lastCode(server, phone))).accountId).toBe(guest.accountId);
    });

    it("a number owned by another account cannot be added: the same answer, no code sent, never moved", async () => {
      const owner = person();
      const phone = newPhone();
      await owner.sendCode(phone);
      const ownerSession = await owner.signIn(phone, await lastCode(server, phone));

      const other = person();
      const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, other.headers());
      const fresh = newPhone();
      const before = (await queuedSms(server, phone)).length;
      // The answers for a taken and a free number are the same.
      expect(await api.call(IdentityService.method.addPhone, { phone }, other.headers(guest.sessionToken))).toStrictEqual(
        await api.call(IdentityService.method.addPhone, { phone: fresh }, other.headers(guest.sessionToken)),
      );
      expect(await queuedSms(server, phone)).toHaveLength(before);
      expect(await queuedSms(server, fresh)).toHaveLength(1);
      // No code can be guessed into it: there is none.
      expect(await reasonOf(api.call(IdentityService.method.verifyPhone, { phone, code: "000000" }, other.headers(guest.sessionToken)))).toStrictEqual({
        code: Code.InvalidArgument,
        reason: "CODE_INVALID",
      });
      expect((await other.identities(guest.sessionToken)).map((i) => i.kind)).toStrictEqual([IdentityKind.GUEST]);
      expect((await owner.identities(ownerSession.sessionToken)).map((i) => i.value)).toStrictEqual([phone]);
    });
  });

  it("admins see every kind of identity in GetUser (audited); the audit trail records phone sign-ins; the export holds the phone and its profile; erasure frees the number", async () => {
    const api = createCaller("connect-json-h1", server.baseUrl);
    const ip = freshIp();
    const headers = (token?: string) => ({ "x-forwarded-for": ip, ...(token ? { authorization: `Bearer ${token}` } : {}) });
    const rootEmail = `root.${Date.now()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const root = await api.call(
      SessionService.method.signIn,
      { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } },
      headers(),
    );
    const phone = newPhone();
    await api.call(SessionService.method.sendSignInCode, { phone }, headers());
    const person = await api.call(
      SessionService.method.signIn,
      { method: { case: "phoneCode", value: { phone, code: await lastCode(server, phone) } } },
      headers(),
    );
    await api.call(IdentityService.method.updateIdentityProfile, { profile: { zipcode: "22300" } }, headers(person.sessionToken));

    const got = await api.call(AdminService.method.getUser, { accountId: person.accountId, reason: "support ticket 10" }, headers(root.sessionToken));
    expect(got.identities.map((i) => [i.kind, i.value, i.verified])).toStrictEqual([[IdentityKind.PHONE, phone, true]]);
    const { events } = await api.call(
      AdminService.method.listAuditEvents,
      { pageSize: 500, target: `account:${person.accountId}` },
      headers(root.sessionToken),
    );
    const actions = events.map((e) => `${e.action}:${e.outcome}`);
    expect(actions).toEqual(expect.arrayContaining(["session.send_sign_in_code:success", "session.sign_in_phone:success", "user.get:success"]));

    const parts: Array<Record<string, unknown>> = [];
    for await (const part of createClient(AccountService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" })).exportAccountData(
      {},
      { headers: headers(person.sessionToken) },
    ))
      parts.push(JSON.parse(part.json) as Record<string, unknown>);
    const identities = parts.filter((p) => p.section === "identities").flatMap((p) => p.records as Array<Record<string, unknown>>);
    expect(identities).toEqual([expect.objectContaining({ kind: "PHONE", value: phone, verified: true, profile: { zipcode: "22300" } })]);

    // Erasure takes the phone identity with the account: the number is free again, and signs up a new account.
    await api.call(AdminService.method.deleteUser, { accountId: person.accountId, reason: "erasure request 10" }, headers(root.sessionToken));
    expect((await server.rawRows("identities")).filter((r) => r.account_id === person.accountId)).toStrictEqual([]);
    await api.call(SessionService.method.sendSignInCode, { phone }, headers());
    const again = await api.call(
      SessionService.method.signIn,
      { method: { case: "phoneCode", value: { phone, code: await lastCode(server, phone) } } },
      headers(),
    );
    expect(again.accountId).not.toBe(person.accountId);
    api.close();
  });

  it("in an invite-only tenant, a code sign-in never creates an account and guests are refused; national numbers read in its default region", async () => {
    const api = createCaller("grpc-js", server.baseUrl);
    const ip = freshIp();
    const rootEmail = `root.invite.${Date.now()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const root = await api.call(
      SessionService.method.signIn,
      { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } },
      { "x-forwarded-for": ip },
    );
    const { tenant } = await api.call(
      AdminService.method.createTenant,
      { name: "Invite only", settings: { inviteOnly: true, phoneDefaultRegion: "FR" } },
      { "x-forwarded-for": ip, authorization: `Bearer ${root.sessionToken}` },
    );
    const headers = { "x-forwarded-for": ip, "x-tenant-id": tenant!.id };
    const phone = newPhone();
    const national = `0${phone.slice(3)}`; // "06…", read as +33 in the tenant's region
    expect(await api.call(SessionService.method.sendSignInCode, { phone: national }, headers)).toBeDefined();
    expect(await queuedSms(server, phone)).toStrictEqual([]); // nobody to send to: a decoy row
    expect(
      await reasonOf(api.call(SessionService.method.signIn, { method: { case: "phoneCode", value: { phone: national, code: "123456" } } }, headers)),
    ).toStrictEqual({
      code: Code.InvalidArgument,
      reason: "CODE_INVALID",
    });
    expect(await reasonOf(api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers))).toStrictEqual({
      code: Code.FailedPrecondition,
      reason: "SIGN_UP_CLOSED",
    });
    expect((await server.rawRows("identities")).filter((r) => r.tenant_id === tenant!.id)).toStrictEqual([]);
    api.close();
  });

  it("keeps no phone number, SMS code, identity profile or guest id in clear in any table, key-store table or Redis key", async () => {
    const api = createCaller("connect-json-h1", server.baseUrl);
    const headers = (token?: string) => ({ "x-forwarded-for": freshIp(), ...(token ? { authorization: `Bearer ${token}` } : {}) });
    const phone = newPhone();
    await api.call(SessionService.method.sendSignInCode, { phone }, headers());
    const code = await lastCode(server, phone);
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "phoneCode", value: { phone, code } } }, headers());
    const marker = `ProfileMarker${Date.now()}`;
    await api.call(IdentityService.method.updateIdentityProfile, { profile: { nickname: marker } }, headers(signedIn.sessionToken));
    // A code left pending in the ephemeral store, and a guest.
    await api.call(SessionService.method.sendSignInCode, { phone }, headers());
    const pendingCode = await lastCode(server, phone);
    const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers());
    const [guestIdentity] = (await api.call(IdentityService.method.listIdentities, {}, headers(guest.sessionToken))).identities;
    api.close();

    const forms = [phone, phone.slice(1), phone.slice(3), marker, guestIdentity!.value];
    let dump = "";
    for (const table of await server.rawTables()) dump += JSON.stringify(await server.rawRows(table));
    for (const table of ["account_keys", "erasure_ledger"]) dump += JSON.stringify(await server.rawKeyRows(table).catch(() => []));
    if (backend === "mysql") dump += await redisDump(server.config.redisKeyPrefix);
    expect(dump).toContain(signedIn.accountId); // the dump is real
    for (const secret of forms) expect(dump).not.toContain(secret);
    // The codes: only as HMACs (a 6-digit string may occur by chance elsewhere, so look for it as a value).
    for (const c of [code, pendingCode]) expect(dump).not.toMatch(new RegExp(`"${c}"`));
  });

  // Last: it moves the clock a month ahead.
  it("retention deletes guests never upgraded after the tenant's guest_retention (30 days), keeping upgraded ones", async () => {
    const api = createCaller("connect-json-h1", server.baseUrl);
    const headers = (token?: string) => ({ "x-forwarded-for": freshIp(), ...(token ? { authorization: `Bearer ${token}` } : {}) });
    const unused = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers());
    const upgraded = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers());
    const phone = newPhone();
    await api.call(IdentityService.method.addPhone, { phone }, headers(upgraded.sessionToken));
    await api.call(IdentityService.method.verifyPhone, { phone, code: await lastCode(server, phone) }, headers(upgraded.sessionToken));
    const accountRows = async (id: string) => (await server.rawRows("accounts")).filter((r) => r.id === id).length;

    offset += 29 * 24 * 60 * MINUTE;
    await server.runtime.retention.run(now());
    expect([await accountRows(unused.accountId), await accountRows(upgraded.accountId)]).toStrictEqual([1, 1]);
    offset += 2 * 24 * 60 * MINUTE;
    expect((await server.runtime.retention.run(now())).guestAccounts).toBeGreaterThanOrEqual(1);
    expect([await accountRows(unused.accountId), await accountRows(upgraded.accountId)]).toStrictEqual([0, 1]);
    api.close();
  });
});
