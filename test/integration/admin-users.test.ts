// User management (AdminService) end to end over a real server on every
// backend: invitations accepted through CompletePasswordReset (expired and
// reused ones refused), manual activation, deactivation and role changes seen
// at once by SignIn and ValidateSession (over grpc-js: the fast path, and its
// session cache), the per-account rules (roles, last super admin), the audit
// trail of every action, and ListUsers' keyset pagination — 1,000 users listed
// in pages of 50 while others are created at random places in the order — with
// an EXPLAIN check on MySQL that every listing reads an index range.
import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AdminService, type ListUsersRequestSchema } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { INVITATION_TTL_MS } from "../../src/domain/admin-users.ts";
import type { Principal } from "../../src/domain/principal.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { openSqlDatabase } from "../../src/store/sql/database.ts";
import { listAccountsQuery } from "../../src/store/sql/account-admin-store.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, type Caller, refusal as refused } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const ROOT_PASSWORD = "operator's own long passphrase 42";
const UNKNOWN_ID = "0197a1b2-0000-7000-8000-000000000000";
let seq = 0;
const uniqueEmail = (tag: string) => `users.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** The code name and ErrorInfo reason of a refused call (Connect callers carry the details). */
/** "Code REASON" of a refused call. */
async function refusal(call: Promise<unknown>): Promise<string> {
  const e = await refused(call);
  const reason = e.findDetails(ErrorInfoSchema)[0]?.reason;
  return reason ? `${Code[e.code]} ${reason}` : Code[e.code]!;
}

describe.each(BACKENDS)("user management on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let grpc: Caller;
  let offset = 0;
  let root: Record<string, string>;
  let rootId: string;
  let rootEmail: string;
  let shopId: string;
  let gatedId: string;
  let shopAdmin: Record<string, string>;
  let shopAdminId: string;
  let gatedAdmin: Record<string, string>;

  const inTenant = (tenantId: string, headers: Record<string, string> = {}) => ({ ...headers, "x-tenant-id": tenantId });

  async function signIn(email: string, password: string, tenantId: string) {
    const res = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password } } }, { "x-tenant-id": tenantId });
    return { token: res.sessionToken, accountId: res.accountId };
  }

  /** A user created with a password by the tenant's admin: active, signed in. */
  async function activeUser(tag: string, tenantId: string, admin: Record<string, string>, role: Role = Role.USER) {
    const email = uniqueEmail(tag);
    const created = await api.call(AdminService.method.createUser, { email, password: PASSWORD, role }, admin);
    const session = await signIn(email, PASSWORD, tenantId);
    return { email, id: created.account!.id, token: session.token };
  }

  /** Invites `email` and returns the invitation's token, read from the message received. */
  async function invite(email: string, admin: Record<string, string>, extra: { displayName?: string; locale?: string } = {}) {
    const created = await api.call(AdminService.method.createUser, { email, sendWelcome: true, ...extra }, admin);
    const mail = await server.waitForMail(email, (m) => m.text.includes("accept-invitation"));
    return { account: created.account!, token: linkToken(mail.text), mail };
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now: () => Date.now() + offset } });
    api = createCaller("connect-json-h1", server.baseUrl);
    grpc = createCaller("grpc-js", server.baseUrl);
    rootEmail = uniqueEmail("root");
    rootId = (await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false })).accountId;
    root = bearer((await signIn(rootEmail, ROOT_PASSWORD, "default")).token);
    shopId = (await api.call(AdminService.method.createTenant, { name: "Shop" }, root)).tenant!.id;
    gatedId = (await api.call(AdminService.method.createTenant, { name: "Gated", settings: { manualActivation: true } }, root)).tenant!.id;
    const shopAdminUser = await activeUser("shop-admin", shopId, inTenant(shopId, root), Role.ADMIN);
    shopAdmin = bearer(shopAdminUser.token);
    shopAdminId = shopAdminUser.id;
    gatedAdmin = bearer((await activeUser("gated-admin", gatedId, inTenant(gatedId, root), Role.ADMIN)).token);
  });
  afterAll(async () => {
    api?.close();
    grpc?.close();
    await server?.close();
  });

  it("an admin invites a person, who sets a password through the link (CompletePasswordReset) and signs in; the link works once", async () => {
    const email = uniqueEmail("invitee");
    const { account, token, mail } = await invite(email, shopAdmin, { displayName: "Ada Lovelace" });
    expect(account).toMatchObject({
      tenantId: shopId,
      role: Role.USER,
      state: AccountState.PENDING_VERIFICATION,
      emailVerified: false,
      email,
      displayName: "Ada Lovelace",
    });
    expect(mail.text).toContain(`https://app.example.test/ui/accept-invitation?token=${token}`);
    expect(mail.text).toContain("7 days");
    expect(token.length).toBeGreaterThanOrEqual(43); // 256 bits
    // No password yet: nothing to sign in with.
    expect(await refusal(signIn(email, PASSWORD, shopId))).toBe("Unauthenticated INVALID_CREDENTIALS");

    // The page behind the link may check the token before showing the form.
    const checked = await api.call(IdentityService.method.checkPasswordResetCode, { code: token });
    expect(Number(checked.expireTime!.seconds) * 1000).toBeGreaterThan(Date.now() + INVITATION_TTL_MS - 60_000);
    // The tenant's password rules apply, and a refused password does not use up the link.
    expect(await refusal(api.call(IdentityService.method.completePasswordReset, { code: token, newPassword: "short" }))).toBe(
      "InvalidArgument PASSWORD_TOO_SHORT",
    );
    await api.call(IdentityService.method.completePasswordReset, { code: token, newPassword: PASSWORD });

    const session = await signIn(email, PASSWORD, shopId);
    expect(session.accountId).toBe(account.id);
    expect((await grpc.call(SessionService.method.validateSession, { sessionToken: session.token })).accountId).toBe(account.id);
    const got = await api.call(AdminService.method.getUser, { accountId: account.id, reason: "support ticket 1" }, shopAdmin);
    expect(got.account).toMatchObject({ state: AccountState.ACTIVE, emailVerified: true });

    // Single use: the same link again is refused, and so is a made-up one.
    expect(await refusal(api.call(IdentityService.method.completePasswordReset, { code: token, newPassword: "another long passphrase 77" }))).toBe(
      "InvalidArgument TOKEN_INVALID",
    );
    expect(await refusal(api.call(IdentityService.method.completePasswordReset, { code: "A".repeat(43), newPassword: PASSWORD }))).toBe(
      "InvalidArgument TOKEN_INVALID",
    );
    expect((await signIn(email, PASSWORD, shopId)).accountId).toBe(account.id);
    // Accepting an invitation is no password change: no "your password was changed" notice.
    const queued = (await server.rawRows("outbox")).filter((r) => r.account_id === account.id).map((r) => r.kind);
    expect(queued).toEqual(["invitation"]);
  });

  it("an invitation for an address the tenant has is AlreadyExists; other bad requests name their field", async () => {
    const email = uniqueEmail("taken");
    await invite(email, shopAdmin);
    expect(await refusal(api.call(AdminService.method.createUser, { email: email.toUpperCase(), sendWelcome: true }, shopAdmin))).toBe(
      "AlreadyExists EMAIL_TAKEN",
    );
    expect(await refusal(api.call(AdminService.method.createUser, { email: uniqueEmail("nopass") }, shopAdmin))).toBe("InvalidArgument INVALID_ARGUMENT");
    expect(await refusal(api.call(AdminService.method.createUser, { email: "not an address", sendWelcome: true }, shopAdmin))).toBe(
      "InvalidArgument INVALID_ARGUMENT",
    );
    expect(await refusal(api.call(AdminService.method.createUser, { email: uniqueEmail("weak"), password: "password123456" }, shopAdmin))).toMatch(
      /^InvalidArgument PASSWORD_(COMMON|WEAK)$/,
    );
    // The same address in another tenant is another person.
    await invite(email, gatedAdmin);
    const events = (await server.runtime.app.audit.list({ tenantId: shopId, action: "user.invite", pageSize: 500, pageToken: "" })).events;
    expect(events.map((e) => e.outcome)).toContain("EMAIL_TAKEN");
  });

  it("an admin never grants a role above its own, nor manages another admin; an API key creates users only", async () => {
    expect(await refusal(api.call(AdminService.method.createUser, { email: uniqueEmail("sa"), password: PASSWORD, role: Role.SUPER_ADMIN }, shopAdmin))).toBe(
      "PermissionDenied ROLE_TOO_HIGH",
    );
    const peer = await activeUser("peer-admin", shopId, shopAdmin, Role.ADMIN);
    expect(await refusal(api.call(AdminService.method.deactivateUser, { accountId: peer.id }, shopAdmin))).toBe("PermissionDenied ACCOUNT_ROLE_TOO_HIGH");
    expect(await refusal(api.call(AdminService.method.setUserRole, { accountId: peer.id, role: Role.USER }, shopAdmin))).toBe(
      "PermissionDenied ACCOUNT_ROLE_TOO_HIGH",
    );
    // Super admins live in the default tenant only.
    expect(await refusal(api.call(AdminService.method.setUserRole, { accountId: peer.id, role: Role.SUPER_ADMIN }, inTenant(shopId, root)))).toBe(
      "PermissionDenied ROLE_TOO_HIGH",
    );

    const key = bearer(
      (await api.call(AdminService.method.createApiKey, { tenantId: shopId, name: "crm", permissions: ["users.read", "users.write"] }, root)).secret,
    );
    const created = await api.call(AdminService.method.createUser, { email: uniqueEmail("by-key"), sendWelcome: true }, key);
    expect(created.account?.tenantId).toBe(shopId);
    expect(await refusal(api.call(AdminService.method.createUser, { email: uniqueEmail("by-key"), sendWelcome: true, role: Role.ADMIN }, key))).toBe(
      "PermissionDenied ROLE_TOO_HIGH",
    );
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: created.account!.id, reason: "sync" }, { ...key, "x-tenant-id": "default" }))).toBe(
      "PermissionDenied OTHER_TENANT",
    );
  });

  it("manual activation: an accepted invitation and a verified sign-up wait for ActivateUser, which SignIn sees at once", async () => {
    const email = uniqueEmail("gated");
    const { account, token } = await invite(email, gatedAdmin);
    await api.call(IdentityService.method.completePasswordReset, { code: token, newPassword: PASSWORD });
    expect((await api.call(AdminService.method.getUser, { accountId: account.id, reason: "activation" }, gatedAdmin)).account).toMatchObject({
      state: AccountState.PENDING_ACTIVATION,
      emailVerified: true,
    });
    expect(await refusal(signIn(email, PASSWORD, gatedId))).toBe("FailedPrecondition ACCOUNT_PENDING_ACTIVATION");
    const activated = await api.call(AdminService.method.activateUser, { accountId: account.id, reason: "approved" }, gatedAdmin);
    expect(activated.account?.state).toBe(AccountState.ACTIVE);
    expect((await signIn(email, PASSWORD, gatedId)).accountId).toBe(account.id);
    // Activating an active account changes nothing.
    expect((await api.call(AdminService.method.activateUser, { accountId: account.id }, gatedAdmin)).account?.state).toBe(AccountState.ACTIVE);

    // A person who signs up and verifies the address waits as well.
    const selfEmail = uniqueEmail("self");
    await api.call(IdentityService.method.signUp, { email: selfEmail, password: PASSWORD }, { "x-tenant-id": gatedId });
    const verifyToken = linkToken((await server.waitForMail(selfEmail, (m) => m.text.includes("verify-email"))).text);
    expect(await refusal(api.call(IdentityService.method.verifyIdentity, { token: verifyToken }))).toBe("FailedPrecondition ACCOUNT_PENDING_ACTIVATION");
    expect(await refusal(signIn(selfEmail, PASSWORD, gatedId))).toBe("FailedPrecondition ACCOUNT_PENDING_ACTIVATION");
    const pending = await api.call(AdminService.method.listUsers, { state: AccountState.PENDING_ACTIVATION }, gatedAdmin);
    const selfId = pending.users.find((u) => u.email === selfEmail)!.id;
    await api.call(AdminService.method.activateUser, { accountId: selfId }, gatedAdmin);
    expect((await signIn(selfEmail, PASSWORD, gatedId)).accountId).toBe(selfId);

    // An account still unverified cannot be activated.
    const unverified = await invite(uniqueEmail("unverified"), gatedAdmin);
    expect(await refusal(api.call(AdminService.method.activateUser, { accountId: unverified.account.id }, gatedAdmin))).toBe(
      "FailedPrecondition IDENTITY_UNVERIFIED",
    );
  });

  it("deactivation ends every session at once — ValidateSession over grpc-js (fast path, cached) and Connect — and SignIn is refused until reactivated", async () => {
    const user = await activeUser("deactivated", shopId, shopAdmin);
    const second = await signIn(user.email, PASSWORD, shopId);
    // Warm the fast path's session cache.
    for (let i = 0; i < 3; i++) expect((await grpc.call(SessionService.method.validateSession, { sessionToken: user.token })).accountId).toBe(user.id);

    const deactivated = await api.call(AdminService.method.deactivateUser, { accountId: user.id, reason: "left the company" }, shopAdmin);
    expect(deactivated.account?.state).toBe(AccountState.DEACTIVATED);
    for (const token of [user.token, second.token]) {
      expect(await codeOf(grpc.call(SessionService.method.validateSession, { sessionToken: token }))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: token }))).toBe(Code.Unauthenticated);
    }
    expect(await refusal(signIn(user.email, PASSWORD, shopId))).toBe("FailedPrecondition ACCOUNT_DEACTIVATED");

    await api.call(AdminService.method.activateUser, { accountId: user.id, reason: "came back" }, shopAdmin);
    const again = await signIn(user.email, PASSWORD, shopId);
    expect((await grpc.call(SessionService.method.validateSession, { sessionToken: again.token })).accountId).toBe(user.id);
    // The sessions ended by the deactivation stay ended.
    expect(await codeOf(grpc.call(SessionService.method.validateSession, { sessionToken: user.token }))).toBe(Code.Unauthenticated);

    const revoked = await api.call(AdminService.method.revokeUserSessions, { accountId: user.id, reason: "lost phone" }, shopAdmin);
    expect(revoked.revokedCount).toBe(1);
    expect(await codeOf(grpc.call(SessionService.method.validateSession, { sessionToken: again.token }))).toBe(Code.Unauthenticated);
  });

  it("a role change ends the account's sessions (they carried the old role); the new one shows on the next sign-in", async () => {
    const user = await activeUser("promoted", shopId, shopAdmin);
    expect((await grpc.call(SessionService.method.validateSession, { sessionToken: user.token })).role).toBe(Role.USER);
    const promoted = await api.call(AdminService.method.setUserRole, { accountId: user.id, role: Role.ADMIN, reason: "new team lead" }, shopAdmin);
    expect(promoted.account?.role).toBe(Role.ADMIN);
    expect(await codeOf(grpc.call(SessionService.method.validateSession, { sessionToken: user.token }))).toBe(Code.Unauthenticated);
    const session = await signIn(user.email, PASSWORD, shopId);
    expect((await grpc.call(SessionService.method.validateSession, { sessionToken: session.token })).role).toBe(Role.ADMIN);
    // Setting the same role again ends nothing.
    await api.call(AdminService.method.setUserRole, { accountId: user.id, role: Role.ADMIN }, inTenant(shopId, root));
    expect((await grpc.call(SessionService.method.validateSession, { sessionToken: session.token })).role).toBe(Role.ADMIN);
    expect(await refusal(api.call(AdminService.method.setUserRole, { accountId: user.id }, inTenant(shopId, root)))).toBe("InvalidArgument INVALID_ARGUMENT");
  });

  it("the last active super admin can be neither demoted, deactivated nor deleted; with a second one it can", async () => {
    // One call at a time: a refusal must not reject before it is awaited.
    for (const call of [
      () => api.call(AdminService.method.setUserRole, { accountId: rootId, role: Role.ADMIN }, root),
      () => api.call(AdminService.method.deactivateUser, { accountId: rootId }, root),
      () => api.call(AdminService.method.deleteUser, { accountId: rootId }, root),
    ]) {
      expect(await refusal(call())).toBe("FailedPrecondition LAST_SUPER_ADMIN");
    }
    const second = await activeUser("second-root", "default", root, Role.SUPER_ADMIN);
    // Two concurrent demotions of the last two, straight at the domain (no session checks in
    // the way), a few times over: exactly one passes, the other sees it under the store's locks.
    const asSuperAdmin = (accountId: string): Principal => ({
      kind: "session",
      tenantId: "default",
      accountId,
      role: Role.SUPER_ADMIN,
      sessionId: "race",
      tokenHash: "race",
      assurance: 1,
      authenticatedAt: 0,
    });
    const users = server.runtime.app.users;
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled([
        users.setRole({ principal: asSuperAdmin(rootId), tenantId: "default", accountId: second.id }, Role.ADMIN),
        users.setRole({ principal: asSuperAdmin(second.id), tenantId: "default", accountId: rootId }, Role.ADMIN),
      ]);
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({ reason: "LAST_SUPER_ADMIN" });
      expect(await server.runtime.durable.accounts.countAccounts({ tenantId: "default", role: Role.SUPER_ADMIN, state: AccountState.ACTIVE })).toBe(1);
      // The survivor restores the other.
      const [survivor, demoted] = results[0]!.status === "fulfilled" ? [rootId, second.id] : [second.id, rootId];
      await users.setRole({ principal: asSuperAdmin(survivor), tenantId: "default", accountId: demoted }, Role.SUPER_ADMIN);
    }
    // Demotions end sessions: the root signs in again for the tests after this one.
    root = bearer((await signIn(rootEmail, ROOT_PASSWORD, "default")).token);
    await api.call(AdminService.method.deleteUser, { accountId: second.id, reason: "temporary" }, root).catch(() => undefined);
  });

  it("GetUser needs a reason, recorded in the audit trail with the actor, target, IP and outcome; refusals after authorization are recorded too", async () => {
    const user = await activeUser("read", shopId, shopAdmin);
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: user.id }, shopAdmin))).toBe("InvalidArgument REASON_REQUIRED");
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: user.id, reason: "   " }, shopAdmin))).toBe("InvalidArgument REASON_REQUIRED");
    const got = await api.call(AdminService.method.getUser, { accountId: user.id, reason: "ticket #4242: cannot sign in" }, shopAdmin);
    expect(got.account).toMatchObject({ id: user.id, email: user.email, state: AccountState.ACTIVE });
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: UNKNOWN_ID, reason: "typo" }, shopAdmin))).toBe("NotFound ACCOUNT_NOT_FOUND");
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: "not-an-id", reason: "typo" }, shopAdmin))).toBe("NotFound ACCOUNT_NOT_FOUND");
    // Another tenant's account is as unknown as a made-up one.
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: user.id, reason: "curious" }, gatedAdmin))).toBe("NotFound ACCOUNT_NOT_FOUND");

    const events = (await server.runtime.app.audit.list({ tenantId: shopId, target: `account:${user.id}`, pageSize: 500, pageToken: "" })).events;
    const reads = events.filter((e) => e.action === "user.get");
    expect(reads.map((e) => e.outcome)).toEqual(["REASON_REQUIRED", "REASON_REQUIRED", "success"]);
    expect(reads[2]).toMatchObject({ actor: `account:${shopAdminId}`, reason: "ticket #4242: cannot sign in", ip: "127.0.0.1", tenantId: shopId });
    expect(reads[2]!.userAgent).not.toBe("");
    const created = events.find((e) => e.action === "user.create");
    expect(created).toMatchObject({ actor: `account:${shopAdminId}`, outcome: "success" });
    // Nothing personal in the trail: ids, never addresses.
    expect(JSON.stringify(events)).not.toContain(user.email);
    expect((await server.runtime.app.audit.verify(shopId)).intact).toBe(true);
  });

  it("UpdateUser (field mask), SetSubscription, SendPasswordReset and DeleteUser", async () => {
    const user = await activeUser("updated", shopId, shopAdmin);
    const updated = await api.call(
      AdminService.method.updateUser,
      {
        account: { id: user.id, displayName: "  Grace Hopper ", pronouns: "she/her", locale: "fr", customAttributes: { team: "compilers" } },
        updateMask: { paths: ["display_name", "locale", "custom_attributes"] },
      },
      shopAdmin,
    );
    expect(updated.account).toMatchObject({ displayName: "Grace Hopper", pronouns: "", locale: "fr", customAttributes: { team: "compilers" } });
    expect(
      await refusal(
        api.call(AdminService.method.updateUser, { account: { id: user.id, email: "x@example.test" }, updateMask: { paths: ["email"] } }, shopAdmin),
      ),
    ).toBe("InvalidArgument FIELD_NOT_UPDATABLE");
    expect(await refusal(api.call(AdminService.method.updateUser, { account: { displayName: "x" }, updateMask: { paths: ["display_name"] } }, shopAdmin))).toBe(
      "InvalidArgument INVALID_ARGUMENT",
    );

    const expire = { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 };
    const subscribed = await api.call(
      AdminService.method.setSubscription,
      { accountId: user.id, subscription: { plan: "pro", expireTime: expire } },
      shopAdmin,
    );
    expect(subscribed.account?.subscription).toMatchObject({ plan: "pro", expireTime: { seconds: expire.seconds } });
    expect(await refusal(api.call(AdminService.method.setSubscription, { accountId: user.id, subscription: { plan: "p".repeat(65) } }, shopAdmin))).toBe(
      "InvalidArgument INVALID_ARGUMENT",
    );
    expect(await refusal(api.call(AdminService.method.setSubscription, { accountId: user.id }, shopAdmin))).toBe("InvalidArgument INVALID_ARGUMENT");
    const onPro = await api.call(AdminService.method.listUsers, { plan: "pro" }, shopAdmin);
    expect(onPro.users.map((u) => u.id)).toEqual([user.id]);
    const cleared = await api.call(AdminService.method.setSubscription, { accountId: user.id, subscription: {} }, shopAdmin);
    expect(cleared.account?.subscription?.plan).toBe("");
    expect(cleared.account?.subscription?.expireTime).toBeUndefined();

    await api.call(AdminService.method.sendPasswordReset, { accountId: user.id, reason: "asked by phone" }, shopAdmin);
    const reset = await server.waitForMail(user.email, (m) => m.text.includes("reset-password?token="));
    await api.call(IdentityService.method.completePasswordReset, { code: linkToken(reset.text), newPassword: "a brand new passphrase 2024" });
    expect((await signIn(user.email, "a brand new passphrase 2024", shopId)).accountId).toBe(user.id);

    // An invited person who lost the message gets a new invitation instead.
    const invited = await invite(uniqueEmail("resend"), shopAdmin);
    await api.call(AdminService.method.sendPasswordReset, { accountId: invited.account.id }, shopAdmin);
    const resent = await server.waitForMail(invited.account.email, (m) => m.text.includes("accept-invitation") && linkToken(m.text) !== invited.token);
    await api.call(IdentityService.method.completePasswordReset, { code: linkToken(resent.text), newPassword: PASSWORD });
    expect((await signIn(invited.account.email, PASSWORD, shopId)).accountId).toBe(invited.account.id);

    const doomed = await activeUser("deleted", shopId, shopAdmin);
    await api.call(AdminService.method.deleteUser, { accountId: doomed.id, reason: "GDPR request 17" }, shopAdmin);
    expect(await codeOf(grpc.call(SessionService.method.validateSession, { sessionToken: doomed.token }))).toBe(Code.Unauthenticated);
    expect(await refusal(api.call(AdminService.method.getUser, { accountId: doomed.id, reason: "check" }, shopAdmin))).toBe("NotFound ACCOUNT_NOT_FOUND");
    expect(await refusal(signIn(doomed.email, PASSWORD, shopId))).toBe("Unauthenticated INVALID_CREDENTIALS");
    expect(await refusal(api.call(AdminService.method.deleteUser, { accountId: doomed.id }, shopAdmin))).toBe("NotFound ACCOUNT_NOT_FOUND");
  });

  it("ListUsers filters by state, role, plan, creation time and exact email, and refuses a token issued for other filters", async () => {
    const tenant = (await api.call(AdminService.method.createTenant, { name: "Filters" }, root)).tenant!.id;
    const admin = inTenant(tenant, root);
    const a = await activeUser("f-a", tenant, admin);
    const b = await activeUser("f-b", tenant, admin, Role.ADMIN);
    const c = (await invite(uniqueEmail("f-c"), admin)).account;
    const ids = async (filter: MessageInitShape<typeof ListUsersRequestSchema>) =>
      (await api.call(AdminService.method.listUsers, filter, admin)).users.map((u) => u.id);
    expect(await ids({})).toEqual([a.id, b.id, c.id]);
    expect(await ids({ role: Role.ADMIN })).toEqual([b.id]);
    expect(await ids({ state: AccountState.PENDING_VERIFICATION })).toEqual([c.id]);
    expect(await ids({ email: a.email.toUpperCase() })).toEqual([a.id]);
    expect(await ids({ email: a.email, role: Role.ADMIN })).toEqual([]);
    expect(await ids({ email: uniqueEmail("nobody") })).toEqual([]);
    const createdB = (await api.call(AdminService.method.getUser, { accountId: b.id, reason: "test" }, admin)).account!.createTime!;
    expect(await ids({ createdAfter: createdB })).toEqual([b.id, c.id]);
    expect(await ids({ createdBefore: createdB })).toEqual([a.id]);

    const first = await api.call(AdminService.method.listUsers, { pageSize: 1 }, admin);
    expect(first.nextPageToken).not.toBe("");
    expect((await api.call(AdminService.method.listUsers, { pageSize: 1, pageToken: first.nextPageToken }, admin)).users.map((u) => u.id)).toEqual([b.id]);
    expect(await refusal(api.call(AdminService.method.listUsers, { pageSize: 1, pageToken: first.nextPageToken, role: Role.USER }, admin))).toBe(
      "InvalidArgument PAGE_TOKEN_INVALID",
    );
    expect(await refusal(api.call(AdminService.method.listUsers, { pageToken: "garbage" }, admin))).toBe("InvalidArgument PAGE_TOKEN_INVALID");
    expect(await refusal(api.call(AdminService.method.listUsers, { pageSize: 501 }, admin))).toBe("InvalidArgument INVALID_ARGUMENT");
    expect(await refusal(api.call(AdminService.method.listUsers, { role: 9 as Role }, admin))).toBe("InvalidArgument INVALID_ARGUMENT");
    // A tenant admin lists its own tenant only.
    expect((await api.call(AdminService.method.listUsers, {}, shopAdmin)).users.every((u) => u.tenantId === shopId)).toBe(true);
  });

  // Last: it moves the clock a week ahead, past every session's idle timeout.
  it("an expired invitation is refused", async () => {
    const { token } = await invite(uniqueEmail("late"), shopAdmin);
    offset += INVITATION_TTL_MS + 60_000;
    expect(await refusal(api.call(IdentityService.method.checkPasswordResetCode, { code: token }))).toBe("InvalidArgument TOKEN_INVALID");
    expect(await refusal(api.call(IdentityService.method.completePasswordReset, { code: token, newPassword: PASSWORD }))).toBe("InvalidArgument TOKEN_INVALID");
  });
});

describe.each(BACKENDS)("ListUsers pagination on the %s backend", (backend) => {
  const PRE_EXISTING = 1000;
  let server: TestServer;
  let api: Caller;
  /** The server's clock; during the concurrent phase it hands out random times inside the pre-existing range. */
  let clock = () => Date.now();
  let tenantId: string;
  let admin: Record<string, string>;

  beforeAll(async () => {
    // Nothing is delivered: the invitations stay in the outbox.
    server = await startTestServer(backend, { runtime: { now: () => clock(), deliver: false } });
    api = createCaller("connect-json-h1", server.baseUrl);
    const rootEmail = uniqueEmail("page-root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
    const rootToken = (
      await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: ROOT_PASSWORD } } })
    ).sessionToken;
    tenantId = (await api.call(AdminService.method.createTenant, { name: "Bulk" }, bearer(rootToken))).tenant!.id;
    admin = { ...bearer(rootToken), "x-tenant-id": tenantId };
  }, 60_000);
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  it("lists 1,000 users in pages of 50 while others are created, each pre-existing user exactly once, oldest first", async () => {
    // Invitations (no password: no argon2) created in-process, 25 at a time.
    const principal: Principal = { kind: "api_key", tenantId, apiKeyId: "test-bulk", permissions: ["users.write"] };
    const preExisting: string[] = [];
    for (let i = 0; i < PRE_EXISTING; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, PRE_EXISTING - i) }, (_, j) =>
          server.runtime.app.users.create({
            principal,
            tenantId,
            email: `bulk.${i + j}.${seq++}@example.test`,
            password: "",
            role: 0,
            sendWelcome: true,
            displayName: "",
            locale: "",
          }),
        ),
      );
      preExisting.push(...batch.map((a) => a.id));
    }
    const first = await server.runtime.app.users.get({ principal, tenantId, accountId: preExisting[0]!, reason: "test" });
    const last = await server.runtime.app.users.get({ principal, tenantId, accountId: preExisting[PRE_EXISTING - 1]!, reason: "test" });

    // From now on every new account lands at a random place among the pre-existing ones:
    // an offset-based listing would then skip or repeat people; a keyset one cannot.
    clock = () => first.createdAt + Math.floor(Math.random() * (last.createdAt - first.createdAt + 1));
    let listing = true;
    const addedConcurrently: string[] = [];
    const creator = (async () => {
      while (listing) {
        const res = await api.call(AdminService.method.createUser, { email: `late.${seq++}@example.test`, sendWelcome: true }, admin);
        addedConcurrently.push(res.account!.id);
      }
    })();

    const seen: Array<{ id: string; at: bigint; nanos: number }> = [];
    let pageToken = "";
    let pages = 0;
    try {
      do {
        const page = await api.call(AdminService.method.listUsers, { pageSize: 50, pageToken }, admin);
        expect(page.users.length).toBeLessThanOrEqual(50);
        seen.push(...page.users.map((u) => ({ id: u.id, at: u.createTime!.seconds, nanos: u.createTime!.nanos })));
        pageToken = page.nextPageToken;
        pages++;
        // Give the creator room between pages.
        await new Promise((r) => setTimeout(r, 5));
      } while (pageToken !== "");
    } finally {
      listing = false;
      await creator;
      clock = () => Date.now();
    }

    expect(addedConcurrently.length).toBeGreaterThan(0);
    expect(pages).toBeGreaterThanOrEqual(PRE_EXISTING / 50);
    const ids = seen.map((s) => s.id);
    expect(new Set(ids).size, "no user is listed twice").toBe(ids.length);
    const listed = new Set(ids);
    expect(
      preExisting.filter((id) => !listed.has(id)),
      "every pre-existing user is listed",
    ).toEqual([]);
    // Oldest first: (create_time, id) never decreases.
    for (let i = 1; i < seen.length; i++) {
      const [p, q] = [seen[i - 1]!, seen[i]!];
      const order = p.at !== q.at ? (p.at < q.at ? -1 : 1) : p.nanos !== q.nanos ? p.nanos - q.nanos : p.id < q.id ? -1 : 1;
      expect(order, `position ${i}`).toBeLessThan(0);
    }
  }, 120_000);

  it.runIf(backend === "mysql")("every listing is an index range on MySQL (EXPLAIN: no full scan, no filesort)", async () => {
    const database = openSqlDatabase({ mysqlUrl: server.config.mysqlUrl });
    const connection = await createConnection({ uri: server.config.mysqlUrl! });
    try {
      await sql`ANALYZE TABLE accounts`.execute(database.db);
      const some = (
        await server.runtime.app.users.list({ tenantId, state: 0, role: 0, plan: "", subscriptionStatus: 0, email: "", pageSize: 1, pageToken: "" })
      ).users[0]!;
      const after = { createdAt: some.createdAt, id: some.id };
      const queries = {
        default: { tenantId, limit: 51 },
        "default, second page": { tenantId, after, limit: 51 },
        role: { tenantId, role: Role.USER, limit: 51 },
        "role, second page": { tenantId, role: Role.USER, after, limit: 51 },
        state: { tenantId, state: AccountState.PENDING_VERIFICATION, limit: 51 },
        "state, second page": { tenantId, state: AccountState.PENDING_VERIFICATION, after, limit: 51 },
        plan: { tenantId, plan: "pro", limit: 51 },
        "created range": { tenantId, createdAtOrAfter: some.createdAt, createdBefore: some.createdAt + 60_000, limit: 51 },
      };
      for (const [name, query] of Object.entries(queries)) {
        const compiled = listAccountsQuery(database.db, query).compile();
        const [plan] = (await connection.query(`EXPLAIN ${compiled.sql}`, compiled.parameters as unknown[])) as unknown as [Array<Record<string, unknown>>];
        for (const row of plan) {
          expect(row.type, `${name}: ${JSON.stringify(row)}`).not.toBe("ALL");
          expect(row.type, `${name}: ${JSON.stringify(row)}`).not.toBe("index");
          expect(row.key, `${name}: ${JSON.stringify(row)}`).toMatch(/^accounts_tenant_/);
          expect(String(row.Extra ?? ""), `${name}: ${JSON.stringify(row)}`).not.toContain("filesort");
        }
      }
    } finally {
      await connection.end();
      await database.close();
    }
  });
});
