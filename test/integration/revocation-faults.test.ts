// Revocation is a promise (DESIGN): every committed change that ends sessions
// ends them whatever the session store does at that moment, and every such RPC
// is safe to retry. Here the session store fails right after the change
// commits (test/support/faults.ts: the calls that end sessions throw, while the
// session itself can still be read), for each RPC that ends sessions:
// SetUserRole, DeactivateUser, DeleteUser, DeleteAccount, ChangePassword,
// CompletePasswordReset and the operator's super-admin promotion. Each answers
// success (the revocation committed with the change), the old session is
// refused at once — over the gRPC fast path and its cache too — and, once the
// store answers again, a retry or the background drain removes it for good.
// Last, real Redis behind a TCP proxy that refuses connections: the same
// promise with no test hook in the path.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { Role } from "../../src/domain/types.ts";
import { createLogger } from "../../src/server/logger.ts";
import { createRuntime, type Runtime } from "../../src/server/wiring.ts";
import { BACKENDS, REDIS_URL } from "../support/backends.ts";
import { codeOf, createCaller, type Caller } from "../support/clients.ts";
import { sessionStoreFaults, type SessionStoreFaults } from "../support/faults.ts";
import { startTcpProxy, type TcpProxy } from "../support/proxy.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "a completely different passphrase 9";
const ROOT_PASSWORD = "operator's own long passphrase 42";
let seq = 0;
const uniqueEmail = (tag: string) => `revoke.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe.each(BACKENDS)("revocation while the session store fails, on the %s backend", (backend) => {
  let server: TestServer;
  let faults: SessionStoreFaults;
  let api: Caller;
  let grpc: Caller;
  let root: Record<string, string>;
  let shopId: string;
  let shopRoot: Record<string, string>;

  async function signIn(email: string, password: string, tenantId: string) {
    const res = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password } } }, { "x-tenant-id": tenantId });
    return res.sessionToken;
  }

  async function user(tag: string, role: Role = Role.USER) {
    const email = uniqueEmail(tag);
    const id = (await api.call(AdminService.method.createUser, { email, password: PASSWORD, role }, shopRoot)).account!.id;
    return { email, id, token: await signIn(email, PASSWORD, shopId) };
  }

  /** What ValidateSession answers over the gRPC fast path (with its cache) and over Connect: a role, or a refusal code. */
  async function validate(token: string): Promise<{ fast: Role | Code; connect: Role | Code }> {
    const one = (caller: Caller) =>
      caller.call(SessionService.method.validateSession, { sessionToken: token }).then(
        (r) => r.role as Role | Code,
        async (e: unknown) => await codeOf(Promise.reject(e)),
      );
    return { fast: await one(grpc), connect: await one(api) };
  }
  const refused = { fast: Code.Unauthenticated, connect: Code.Unauthenticated };

  const pending = async () => (await server.rawRows("pending_revocations")).length;
  const stored = (accountId: string) => server.runtime.ephemeral.sessions.listForAccount(accountId);

  /** Fails the revoking calls while `change` runs, and checks that it did fail something (else the test proves nothing). */
  async function whileFailing<T>(change: () => Promise<T>): Promise<T> {
    const before = faults.failures;
    faults.failing = true;
    try {
      return await change();
    } finally {
      faults.failing = false;
      expect(faults.failures).toBeGreaterThan(before);
    }
  }

  beforeAll(async () => {
    faults = sessionStoreFaults();
    // No background loop: each test drains (or retries) when it wants the store healed.
    server = await startTestServer(backend, { runtime: { wrapEphemeral: faults.wrap, revocationIntervalMs: 0 } });
    api = createCaller("connect-json-h1", server.baseUrl);
    grpc = createCaller("grpc-js", server.baseUrl);
    const rootEmail = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
    root = bearer(await signIn(rootEmail, ROOT_PASSWORD, "default"));
    shopId = (await api.call(AdminService.method.createTenant, { name: "Shop" }, root)).tenant!.id;
    shopRoot = { ...root, "x-tenant-id": shopId };
  });
  afterAll(async () => {
    api?.close();
    grpc?.close();
    await server?.close();
  });
  beforeEach(async () => {
    faults.failing = false;
    await server.runtime.revocations.drain();
  });

  it("SetUserRole: a demoted admin's session is refused at once (never answered as ADMIN); a retry with the same role ends it in the store", async () => {
    const admin = await user("admin", Role.ADMIN);
    expect(await validate(admin.token)).toEqual({ fast: Role.ADMIN, connect: Role.ADMIN }); // cached by the fast path now
    await api.call(AdminService.method.listUsers, {}, bearer(admin.token));

    const res = await whileFailing(() =>
      api.call(AdminService.method.setUserRole, { accountId: admin.id, role: Role.USER, reason: "left the team" }, shopRoot),
    );
    expect(res.account!.role).toBe(Role.USER);
    expect(await validate(admin.token)).toEqual(refused);
    expect(await codeOf(api.call(AdminService.method.listUsers, {}, bearer(admin.token)))).toBe(Code.Unauthenticated);
    expect(await pending()).toBe(1);
    expect(await stored(admin.id)).toHaveLength(1); // still in the store: the revocation is owed

    // The store answers again; the admin retries the call that "failed" for them.
    const retried = await api.call(AdminService.method.setUserRole, { accountId: admin.id, role: Role.USER, reason: "left the team" }, shopRoot);
    expect(retried.account!.role).toBe(Role.USER);
    expect(await stored(admin.id)).toHaveLength(0);
    expect(await pending()).toBe(0);
    expect(await validate(admin.token)).toEqual(refused);
    // A new sign-in carries the role the account has now.
    expect(await validate(await signIn(admin.email, PASSWORD, shopId))).toEqual({ fast: Role.USER, connect: Role.USER });
  });

  it("SetUserRole with the role the account already has still ends sessions carrying another role", async () => {
    const admin = await user("stale", Role.ADMIN);
    // A session issued with a role the account no longer has (a sign-in that raced a role change).
    await server.runtime.durable.accounts.setRole({ tenantId: shopId, accountId: admin.id, role: Role.USER, at: Date.now() });
    expect((await validate(admin.token)).connect).toBe(Role.ADMIN);
    await api.call(AdminService.method.setUserRole, { accountId: admin.id, role: Role.USER }, shopRoot);
    expect(await validate(admin.token)).toEqual(refused);
    expect(await stored(admin.id)).toHaveLength(0);
  });

  it("DeactivateUser: the session is refused at once; the drain ends it once the store answers; a retry answers the same", async () => {
    const person = await user("deactivated");
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });
    await whileFailing(() => api.call(AdminService.method.deactivateUser, { accountId: person.id, reason: "abuse" }, shopRoot));
    expect(await validate(person.token)).toEqual(refused);
    expect(await stored(person.id)).toHaveLength(1);

    expect(await server.runtime.revocations.drain()).toEqual({ pending: 1, completed: 1 });
    expect(await stored(person.id)).toHaveLength(0);
    expect(await pending()).toBe(0);
    expect(await validate(person.token)).toEqual(refused);
    await api.call(AdminService.method.deactivateUser, { accountId: person.id, reason: "abuse" }, shopRoot);
    expect(await pending()).toBe(0);
  });

  it("DeleteUser: the erased account's sessions are refused at once; a retry answers NotFound and ends them in the store", async () => {
    const person = await user("erased");
    const second = await signIn(person.email, PASSWORD, shopId);
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });
    await whileFailing(() => api.call(AdminService.method.deleteUser, { accountId: person.id, reason: "asked by email" }, shopRoot));
    expect(await validate(person.token)).toEqual(refused);
    expect(await validate(second)).toEqual(refused);
    expect(await stored(person.id)).toHaveLength(2);

    expect(await codeOf(api.call(AdminService.method.deleteUser, { accountId: person.id, reason: "asked by email" }, shopRoot))).toBe(Code.NotFound);
    expect(await stored(person.id)).toHaveLength(0);
    expect(await pending()).toBe(0);
    expect(await validate(person.token)).toEqual(refused);
  });

  it("DeleteUser after an erasure that stopped once its key was destroyed: NotFound, and the sessions end", async () => {
    const person = await user("half-erased");
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });
    // KeyStore.erase committed, then the main transaction failed: rows left, unreadable.
    await server.runtime.durable.keys.delete([person.id]);
    expect(await codeOf(api.call(AdminService.method.deleteUser, { accountId: person.id, reason: "asked again" }, shopRoot))).toBe(Code.NotFound);
    expect(await validate(person.token)).toEqual(refused);
    expect(await stored(person.id)).toHaveLength(0);
    expect((await server.rawRows("accounts")).filter((r) => r.id === person.id)).toHaveLength(0);
    expect(await pending()).toBe(0);
  });

  it("RevokeUserSessions: answers success and the sessions are refused at once; the drain ends them once the store answers", async () => {
    const person = await user("revoked");
    const second = await signIn(person.email, PASSWORD, shopId);
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });
    const res = await whileFailing(() => api.call(AdminService.method.revokeUserSessions, { accountId: person.id }, shopRoot));
    expect(res.revokedCount).toBe(0); // none ended yet: owed
    expect(await validate(person.token)).toEqual(refused);
    expect(await validate(second)).toEqual(refused);
    await server.runtime.revocations.drain();
    expect(await stored(person.id)).toHaveLength(0);
    expect(await pending()).toBe(0);
    // A session signed in after the call is not the revocation's business.
    const later = await signIn(person.email, PASSWORD, shopId);
    expect(await validate(later)).toEqual({ fast: Role.USER, connect: Role.USER });
    expect((await api.call(AdminService.method.revokeUserSessions, { accountId: person.id }, shopRoot)).revokedCount).toBe(1);
    expect(await validate(later)).toEqual(refused);
  });

  it("DeleteAccount: every session of the person who erased their account is refused at once, and gone after the drain", async () => {
    const person = await user("self-erased");
    const other = await signIn(person.email, PASSWORD, shopId);
    expect(await validate(other)).toEqual({ fast: Role.USER, connect: Role.USER });
    await whileFailing(() => api.call(AccountService.method.deleteAccount, { password: PASSWORD }, bearer(person.token)));
    expect(await validate(person.token)).toEqual(refused);
    expect(await validate(other)).toEqual(refused);
    // The retry cannot even authenticate: the session is refused.
    expect(await codeOf(api.call(AccountService.method.deleteAccount, { password: PASSWORD }, bearer(person.token)))).toBe(Code.Unauthenticated);

    await server.runtime.revocations.drain();
    expect(await stored(person.id)).toHaveLength(0);
    expect(await pending()).toBe(0);
  });

  it("ChangePassword: the other sessions are refused at once and the caller's is kept, before and after the drain", async () => {
    const person = await user("changer");
    const other = await signIn(person.email, PASSWORD, shopId);
    expect(await validate(other)).toEqual({ fast: Role.USER, connect: Role.USER });
    await whileFailing(() => api.call(IdentityService.method.changePassword, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, bearer(person.token)));
    expect(await validate(other)).toEqual(refused);
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });

    await server.runtime.revocations.drain();
    expect((await stored(person.id)).length).toBe(1);
    expect(await validate(other)).toEqual(refused);
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });
  });

  it("CompletePasswordReset: the sessions are refused at once (the code is used up: nobody can retry); a sign-in after it survives the drain", async () => {
    const person = await user("resetter");
    expect(await validate(person.token)).toEqual({ fast: Role.USER, connect: Role.USER });
    await api.call(IdentityService.method.startPasswordReset, { email: person.email }, { "x-tenant-id": shopId });
    const mail = await server.waitForMail(person.email, (m) => m.text.includes("reset-password"));
    await whileFailing(() => api.call(IdentityService.method.completePasswordReset, { code: linkToken(mail.text), newPassword: NEW_PASSWORD }));
    expect(await validate(person.token)).toEqual(refused);

    // The person signs in with the new password before the revocation is carried out.
    const fresh = await signIn(person.email, NEW_PASSWORD, shopId);
    expect(await validate(fresh)).toEqual({ fast: Role.USER, connect: Role.USER });
    await server.runtime.revocations.drain();
    expect(await pending()).toBe(0);
    expect(await validate(person.token)).toEqual(refused);
    expect(await validate(fresh)).toEqual({ fast: Role.USER, connect: Role.USER });
  });

  it("the operator's super-admin promotion (admin:create --promote) ends the account's sessions the same way", async () => {
    const email = uniqueEmail("promoted");
    await api.call(AdminService.method.createUser, { email, password: PASSWORD }, root);
    const token = await signIn(email, PASSWORD, "default");
    expect(await validate(token)).toEqual({ fast: Role.USER, connect: Role.USER });
    await whileFailing(() => server.runtime.bootstrap.createSuperAdmin({ email, password: NEW_PASSWORD, promote: true }));
    expect(await validate(token)).toEqual(refused);
    await server.runtime.revocations.drain();
    expect(await pending()).toBe(0);
    expect(await validate(token)).toEqual(refused);
  });
});

describe.each(BACKENDS)("the revocation loop, on the %s backend", (backend) => {
  let server: TestServer;
  let faults: SessionStoreFaults;
  let api: Caller;

  beforeAll(async () => {
    faults = sessionStoreFaults();
    server = await startTestServer(backend, { runtime: { wrapEphemeral: faults.wrap, revocationIntervalMs: 50 } });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  it("carries out a revocation the session store refused, on its own, once the store answers again", async () => {
    const rootEmail = uniqueEmail("loop-root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
    const root = bearer(
      (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: ROOT_PASSWORD } } })).sessionToken,
    );
    const email = uniqueEmail("loop");
    const id = (await api.call(AdminService.method.createUser, { email, password: PASSWORD, role: Role.ADMIN }, root)).account!.id;
    const token = (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;

    faults.failing = true;
    await api.call(AdminService.method.setUserRole, { accountId: id, role: Role.USER }, root);
    // The loop keeps trying while the store fails, and the session stays refused.
    await new Promise((r) => setTimeout(r, 300));
    expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: token }))).toBe(Code.Unauthenticated);
    expect(await server.rawRows("pending_revocations")).toHaveLength(1);

    faults.failing = false;
    const deadline = Date.now() + 5000;
    while ((await server.runtime.ephemeral.sessions.listForAccount(id)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(await server.runtime.ephemeral.sessions.listForAccount(id)).toHaveLength(0);
    expect(await server.rawRows("pending_revocations")).toHaveLength(0);
    expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: token }))).toBe(Code.Unauthenticated);
  });
});

if (BACKENDS.includes("mysql")) {
  describe("a second instance, on the mysql backend", () => {
    let server: TestServer;
    let faults: SessionStoreFaults;
    let api: Caller;
    let second: Runtime;

    beforeAll(async () => {
      faults = sessionStoreFaults();
      server = await startTestServer("mysql", { runtime: { wrapEphemeral: faults.wrap, revocationIntervalMs: 0 } });
      api = createCaller("connect-json-h1", server.baseUrl);
      // Same database and Redis, its own session cache; its loop reads the queue every 100 ms.
      second = await createRuntime(server.config, createLogger("silent"), { migrate: false, deliver: false, purgeIntervalMs: 0, revocationIntervalMs: 100 });
    });
    afterAll(async () => {
      api?.close();
      await second?.close();
      await server?.close();
    });

    it("refuses a session it has cached once the first instance commits a revocation it could neither carry out nor announce", async () => {
      const rootEmail = uniqueEmail("second-root");
      await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
      const root = bearer(
        (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: ROOT_PASSWORD } } }))
          .sessionToken,
      );
      const email = uniqueEmail("second");
      const id = (await api.call(AdminService.method.createUser, { email, password: PASSWORD, role: Role.ADMIN }, root)).account!.id;
      const token = (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;
      expect((await second.app.sessions.validate(token)).session.role).toBe(Role.ADMIN); // now in the second instance's cache

      faults.failing = true; // the first instance's Redis calls that end sessions and publish fail
      await api.call(AdminService.method.setUserRole, { accountId: id, role: Role.USER }, root);
      const committedAt = Date.now();
      let answered: Role | "refused" = Role.ADMIN;
      while (Date.now() - committedAt < 3000) {
        answered = await Promise.resolve(second.app.sessions.validate(token)).then(
          (v) => v.session.role,
          () => "refused" as const,
        );
        if (answered === "refused") break;
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(answered).toBe("refused");
      // Within the loop's period (plus a read), not the cache's 30 s bound.
      expect(Date.now() - committedAt).toBeLessThan(1000);
      faults.failing = false;
    });
  });
}

if (BACKENDS.includes("mysql")) {
  // The caller's own revoking calls (issue 9): the store delete succeeds, then the
  // announcement to other instances fails. The second instance runs no revocation
  // loop, so only an announcement can end the session in its cache: a retry must
  // announce again even though nothing is left to delete.
  describe("the announcement fails after the delete, a second instance caches the session, on the mysql backend", () => {
    let server: TestServer;
    let faults: SessionStoreFaults;
    let api: Caller;
    let second: Runtime;
    let root: Record<string, string>;

    beforeAll(async () => {
      faults = sessionStoreFaults();
      server = await startTestServer("mysql", { runtime: { wrapEphemeral: faults.wrap, revocationIntervalMs: 0 } });
      api = createCaller("connect-json-h1", server.baseUrl);
      second = await createRuntime(server.config, createLogger("silent"), { migrate: false, deliver: false, purgeIntervalMs: 0, revocationIntervalMs: 0 });
      const rootEmail = uniqueEmail("announce-root");
      await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
      root = bearer(
        (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: ROOT_PASSWORD } } }))
          .sessionToken,
      );
    });
    afterAll(async () => {
      faults.failingPublish = false;
      api?.close();
      await second?.close();
      await server?.close();
    });

    /** A user with two sessions; the second instance has `other` cached. */
    async function twoSessions(tag: string) {
      const email = uniqueEmail(tag);
      await api.call(AdminService.method.createUser, { email, password: PASSWORD, role: Role.USER }, root);
      const signIn = async () =>
        (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;
      const keep = await signIn();
      const other = await signIn();
      const { session } = await second.app.sessions.validate(other);
      return { keep, other, sessionId: session.sessionId };
    }

    /** Fails only the announcement while `call` runs, and checks that it did fail one. */
    async function whilePublishFails(call: () => Promise<unknown>): Promise<void> {
      const before = faults.failures;
      faults.failingPublish = true;
      try {
        await call().catch(() => undefined);
      } finally {
        faults.failingPublish = false;
      }
      expect(faults.failures).toBeGreaterThan(before);
    }

    /** The second instance refuses the session within 2 s (an announcement's delivery), far under its cache's 30 s bound. */
    async function refusedBySecond(token: string) {
      const start = Date.now();
      let refused = false;
      while (!refused && Date.now() - start < 2000) {
        refused = await Promise.resolve(second.app.sessions.validate(token)).then(
          () => false,
          () => true,
        );
        if (!refused) await new Promise((r) => setTimeout(r, 20));
      }
      expect(refused).toBe(true);
    }

    it("RevokeOtherSessions: after a failed announcement and a retry, the second instance refuses the ended session and keeps the caller's", async () => {
      const { keep, other } = await twoSessions("others");
      await whilePublishFails(() => api.call(SessionService.method.revokeOtherSessions, {}, bearer(keep)));
      await api.call(SessionService.method.revokeOtherSessions, {}, bearer(keep));
      await refusedBySecond(other);
      await second.app.sessions.validate(keep);
      expect(await server.runtime.ephemeral.sessions.listForAccount((await second.app.sessions.validate(keep)).session.accountId)).toHaveLength(1);
    });

    it("RevokeSession: the call fails when its announcement fails; the retry answers NotFound and the second instance refuses the session", async () => {
      const { keep, other, sessionId } = await twoSessions("one");
      await whilePublishFails(async () => {
        expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId }, bearer(keep)))).toBe(Code.Unavailable);
      });
      expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId }, bearer(keep)))).toBe(Code.NotFound);
      await refusedBySecond(other);
      await second.app.sessions.validate(keep);
    });

    it("SignOut: a retry after a failed announcement re-announces, and the second instance refuses the session", async () => {
      const { keep, other } = await twoSessions("signout");
      await whilePublishFails(() => api.call(SessionService.method.signOut, {}, bearer(other)));
      await api.call(SessionService.method.signOut, {}, bearer(other));
      await refusedBySecond(other);
      await second.app.sessions.validate(keep);
    });

    it("RevokeUserSessions: a retry after a failed announcement ends the sessions in the second instance's cache", async () => {
      const { keep, other } = await twoSessions("admin");
      const accountId = (await second.app.sessions.validate(keep)).session.accountId;
      await whilePublishFails(() => api.call(AdminService.method.revokeUserSessions, { accountId }, root));
      await api.call(AdminService.method.revokeUserSessions, { accountId }, root);
      await refusedBySecond(other);
      await refusedBySecond(keep);
    });
  });
}

describe.skipIf(!BACKENDS.includes("mysql"))("Redis cut (a TCP proxy refusing) between the commit and the revocation", () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let api: Caller;

  beforeAll(async () => {
    const redis = new URL(REDIS_URL);
    proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    server = await startTestServer("mysql", { env: { REDIS_CONNECT_TIMEOUT_MS: "300", REDIS_COMMAND_TIMEOUT_MS: "300" }, via: { redis: proxy } });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    proxy?.mode("forward");
    api?.close();
    await server?.close();
    await proxy?.close();
  });

  it("DeactivateUser by an API key while Redis is down succeeds; the session is never answered, and is gone within seconds of Redis coming back", async () => {
    const rootEmail = uniqueEmail("cut-root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: ROOT_PASSWORD, promote: false });
    const root = bearer(
      (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: ROOT_PASSWORD } } })).sessionToken,
    );
    const key = bearer((await api.call(AdminService.method.createApiKey, { tenantId: "", name: "ops", permissions: ["users.write"] }, root)).secret);
    const email = uniqueEmail("cut");
    const id = (await api.call(AdminService.method.createUser, { email, password: PASSWORD }, key)).account!.id;
    const token = (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;
    const validate = () => api.call(SessionService.method.validateSession, { sessionToken: token });
    expect((await validate()).role).toBe(Role.USER);

    proxy.mode("refuse");
    const res = await api.call(AdminService.method.deactivateUser, { accountId: id, reason: "left" }, key);
    expect(res.account!.id).toBe(id);
    // Redis is down: nothing is answered for the session, and never as valid.
    expect([Code.Unavailable, Code.Unauthenticated]).toContain(await codeOf(validate()));
    expect(await server.rawRows("pending_revocations")).toHaveLength(1);

    proxy.mode("forward");
    const deadline = Date.now() + 10_000;
    while ((await server.rawRows("pending_revocations")).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await server.rawRows("pending_revocations")).toHaveLength(0);
    expect(await server.runtime.ephemeral.sessions.listForAccount(id)).toEqual([]);
    expect(await codeOf(validate())).toBe(Code.Unauthenticated);
  });
});
