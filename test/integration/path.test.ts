// The path every person takes first, end to end over a real server:
// SignUp → the email received over SMTP → VerifyIdentity → SignIn →
// ValidateSession → GetAccount → SignOut → ValidateSession refused; over
// gRPC (grpc-js), Connect JSON on HTTP/1.1 and gRPC-Web, on every backend.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AccountState, Role } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `Person.${tag}.${Date.now()}.${seq++}@Example.test`;

describe.each(BACKENDS)("the first path on the %s backend", (backend) => {
  let server: TestServer;
  let clockOffset = 0;
  const secretsSeen: string[] = [];
  const emailsSeen: string[] = [];

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now: () => Date.now() + clockOffset } });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function signUpAndVerify(api: Caller, email: string) {
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const mail = await server.waitForMail(email.toLowerCase(), (m) => m.text.includes("token="));
    const token = linkToken(mail.text);
    secretsSeen.push(token);
    emailsSeen.push(email.toLowerCase());
    return { token, mail, verified: await api.call(IdentityService.method.verifyIdentity, { token }) };
  }

  describe.each(PROTOCOLS)("over %s", (protocol) => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller(protocol, server.baseUrl);
    });
    afterAll(() => api.close());

    it("signs up, verifies by the emailed link, signs in, validates, reads the account and signs out", async () => {
      const email = uniqueEmail(protocol);
      const { mail, verified } = await signUpAndVerify(api, email);
      expect(mail.subject.length).toBeGreaterThan(0);
      expect(mail.text).toContain("https://app.example.test/ui/verify-email?token=");
      expect(verified.accountId).toMatch(/^[0-9a-f-]{36}$/);
      expect(verified.sessionToken.startsWith(`${verified.accountId}.`)).toBe(true);
      secretsSeen.push(verified.sessionToken);

      const signedIn = await api.call(SessionService.method.signIn, {
        method: { case: "emailPassword", value: { email: email.toUpperCase(), password: PASSWORD } },
        profileMask: { paths: ["email", "locale"] },
      });
      secretsSeen.push(signedIn.sessionToken);
      expect(signedIn.accountId).toBe(verified.accountId);
      expect(signedIn.sessionToken).not.toBe(verified.sessionToken);
      expect(signedIn.profile?.email).toBe(email.toLowerCase());
      expect(signedIn.profile?.displayName).toBe(""); // not asked for

      const validated = await api.call(SessionService.method.validateSession, { sessionToken: signedIn.sessionToken });
      expect(validated.accountId).toBe(verified.accountId);
      expect(validated.tenantId).toBe("default");
      expect(validated.role).toBe(Role.USER);
      expect(Number(validated.expireTime?.seconds)).toBeGreaterThan(Date.now() / 1000);

      const bearer = { authorization: `Bearer ${signedIn.sessionToken}` };
      const { account } = await api.call(AccountService.method.getAccount, {}, bearer);
      expect(account?.id).toBe(verified.accountId);
      expect(account?.email).toBe(email.toLowerCase());
      expect(account?.emailVerified).toBe(true);
      expect(account?.state).toBe(AccountState.ACTIVE);

      await api.call(SessionService.method.signOut, {}, bearer);
      await api.call(SessionService.method.signOut, {}, bearer); // idempotent
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: signedIn.sessionToken }))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(AccountService.method.getAccount, {}, bearer))).toBe(Code.Unauthenticated);
      // The verification session is a different session and still lives.
      const other = await api.call(SessionService.method.validateSession, { sessionToken: verified.sessionToken });
      expect(other.accountId).toBe(verified.accountId);
    });
  });

  describe("link tokens", () => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller("connect-json-h1", server.baseUrl);
    });

    it("refuses a token used twice", async () => {
      const { token } = await signUpAndVerify(api, uniqueEmail("twice"));
      expect(await codeOf(api.call(IdentityService.method.verifyIdentity, { token }))).toBe(Code.InvalidArgument);
    });

    it("refuses a forged token and an empty one", async () => {
      expect(await codeOf(api.call(IdentityService.method.verifyIdentity, { token: "A".repeat(43) }))).toBe(Code.InvalidArgument);
      expect(await codeOf(api.call(IdentityService.method.verifyIdentity, { token: "" }))).toBe(Code.InvalidArgument);
    });

    it("refuses an expired token", async () => {
      const email = uniqueEmail("expired");
      await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
      const token = linkToken((await server.waitForMail(email.toLowerCase())).text);
      secretsSeen.push(token);
      clockOffset = 25 * 3600 * 1000; // the link lives 24 h
      try {
        expect(await codeOf(api.call(IdentityService.method.verifyIdentity, { token }))).toBe(Code.InvalidArgument);
      } finally {
        clockOffset = 0;
      }
      // And the account stays unverified: signing in is refused for that reason.
      expect(await codeOf(api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }))).toBe(
        Code.FailedPrecondition,
      );
    });

    it("refuses a session token as a link token and a forged session token", async () => {
      const { verified } = await signUpAndVerify(api, uniqueEmail("mixup"));
      expect(await codeOf(api.call(IdentityService.method.verifyIdentity, { token: verified.sessionToken }))).toBe(Code.InvalidArgument);
      const forged = `${verified.accountId}.${"B".repeat(43)}`;
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: forged }))).toBe(Code.Unauthenticated);
    });
  });

  it("turns twenty concurrent sign-ups of one address into exactly one account, each answered alike", async () => {
    const api = createCaller("grpc-js", server.baseUrl);
    const email = uniqueEmail("race");
    const accountsBefore = (await server.rawRows("accounts")).length;
    const identitiesBefore = (await server.rawRows("identities")).length;
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => api.call(IdentityService.method.signUp, { email, password: PASSWORD })));
    api.close();
    expect(results.map((r) => r.status)).toEqual(Array(20).fill("fulfilled"));
    expect((await server.rawRows("accounts")).length).toBe(accountsBefore + 1);
    expect((await server.rawRows("identities")).length).toBe(identitiesBefore + 1);
    // The address is still unverified, so every attempt within the per-address cap
    // (5 an hour) brings a verification link; nothing else is sent.
    await server.waitForMail(email.toLowerCase(), (m) => m.text.includes("verify-email?token="));
    await new Promise((r) => setTimeout(r, 300));
    const received = server.inbox.filter((m) => m.envelopeTo.includes(email.toLowerCase()));
    expect(received.length).toBeGreaterThanOrEqual(1);
    expect(received.length).toBeLessThanOrEqual(5);
    expect(received.every((m) => m.text.includes("verify-email?token="))).toBe(true);
    emailsSeen.push(email.toLowerCase());
  });

  it("keeps no email, session token or link token in clear in any table", async () => {
    expect(secretsSeen.length).toBeGreaterThan(5);
    expect(emailsSeen.length).toBeGreaterThan(3);
    let dump = "";
    const tables = await server.rawTables();
    expect(tables).toEqual(expect.arrayContaining(["accounts", "account_keys", "identities", "outbox", "tenants"]));
    for (const table of tables) dump += JSON.stringify(await server.rawRows(table));
    expect(dump.length).toBeGreaterThan(1000);
    for (const email of emailsSeen) {
      expect(dump.toLowerCase()).not.toContain(email);
      expect(dump.toLowerCase()).not.toContain(email.split("@")[0]!);
    }
    for (const secret of secretsSeen) expect(dump).not.toContain(secret.split(".").pop()!);
  });
});
