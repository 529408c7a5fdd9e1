// Sign-up → verification → sign-in → the caller's own account, handler to
// domain in memory: the mail is read from the outbox, not from a server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { backendUnavailable } from "../../src/domain/ports/errors.ts";
import { linkToken } from "../support/server.ts";
import { createServiceHarness, type ServiceHarness } from "./harness.ts";
import { expectRefused, PASSWORD, uniqueEmail } from "./support.ts";

describe("the identity flow, in memory", () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await createServiceHarness();
  });
  afterAll(() => h?.close());

  it("signs up, verifies with the mailed link, signs in with the password and reads the account", async () => {
    const email = uniqueEmail("flow");
    await h.client(IdentityService).signUp({ email, password: PASSWORD, locale: "fr" });
    // Unverified: the right password does not sign in yet.
    await expectRefused(
      h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email, password: PASSWORD } } }),
      Code.FailedPrecondition,
      "IDENTITY_UNVERIFIED",
    );

    const mail = await h.lastMailTo(email);
    expect(mail.text).toContain("https://app.example.test/");
    const verified = await h.client(IdentityService).verifyIdentity({ token: linkToken(mail.text) });
    expect(verified.sessionToken).not.toBe("");
    // The link is single-use.
    await expectRefused(h.client(IdentityService).verifyIdentity({ token: linkToken(mail.text) }), Code.InvalidArgument);

    const signedIn = await h.client(SessionService).signIn({
      method: { case: "emailPassword", value: { email, password: PASSWORD } },
      profileMask: { paths: ["email", "locale"] },
    });
    expect(signedIn.accountId).toBe(verified.accountId);
    expect(signedIn.profile?.email).toBe(email);
    expect(signedIn.profile?.locale).toBe("fr");
    expect(signedIn.sessionToken).not.toBe(verified.sessionToken);

    const { account } = await h.client(AccountService, signedIn.sessionToken).getAccount({});
    expect(account?.email).toBe(email);
    expect(account?.emailVerified).toBe(true);

    const validated = await h.client(SessionService).validateSession({ sessionToken: signedIn.sessionToken });
    expect(validated.accountId).toBe(verified.accountId);
  });

  it("signs out at once: the token no longer authenticates, and signing out again still succeeds", async () => {
    const email = uniqueEmail("signout");
    await h.client(IdentityService).signUp({ email, password: PASSWORD });
    const { sessionToken } = await h.client(IdentityService).verifyIdentity({ token: linkToken((await h.lastMailTo(email)).text) });
    await h.client(SessionService, sessionToken).signOut({});
    await expectRefused(h.client(AccountService, sessionToken).getAccount({}), Code.Unauthenticated, "SESSION_INVALID");
    await expectRefused(h.client(SessionService).validateSession({ sessionToken }), Code.Unauthenticated, "SESSION_INVALID");
    await h.client(SessionService, sessionToken).signOut({}); // idempotent: a dead token is not refused
  });

  it("answers a wrong password like an unknown address", async () => {
    const email = uniqueEmail("wrong");
    await h.client(IdentityService).signUp({ email, password: PASSWORD });
    await h.client(IdentityService).verifyIdentity({ token: linkToken((await h.lastMailTo(email)).text) });
    const wrong = await expectRefused(
      h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email, password: "not the right password at all" } } }),
      Code.Unauthenticated,
    );
    const unknown = await expectRefused(
      h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email: uniqueEmail("nobody"), password: PASSWORD } } }),
      Code.Unauthenticated,
    );
    expect(wrong.rawMessage).toBe(unknown.rawMessage);
  });
});

describe("a sign-in whose guess cannot be refunded", () => {
  // A correct password's guess is refunded (only failures count): when the refund
  // fails, the sign-in fails, and no session is left behind that no one was given.
  let refundFails = false;
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await createServiceHarness({
      wrapEphemeral: (stores) => ({
        ...stores,
        rateLimiter: {
          ...stores.rateLimiter,
          hit: (...args) => stores.rateLimiter.hit(...args),
          refund: async (...args) => {
            if (refundFails) throw backendUnavailable(new Error("refund lost"));
            return stores.rateLimiter.refund(...args);
          },
        },
      }),
    });
  });
  afterAll(() => h?.close());

  it("fails Unavailable and leaves the account no new session", async () => {
    const email = uniqueEmail("refund");
    await h.client(IdentityService).signUp({ email, password: PASSWORD });
    const { sessionToken } = await h.client(IdentityService).verifyIdentity({ token: linkToken((await h.lastMailTo(email)).text) });
    const before = await h.client(SessionService, sessionToken).listSessions({});
    expect(before.sessions).toHaveLength(1);
    refundFails = true;
    await expectRefused(
      h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email, password: PASSWORD } } }),
      Code.Unavailable,
      "BACKEND_UNAVAILABLE",
    );
    refundFails = false;
    const after = await h.client(SessionService, sessionToken).listSessions({});
    expect(after.sessions.map((s) => s.id)).toEqual(before.sessions.map((s) => s.id));
    // And once the store answers again, the same password signs in.
    const signedIn = await h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    expect(signedIn.sessionToken).not.toBe("");
  });
});
