// The tenant's trial applies to every way an account comes to exist, not only
// an email sign-up (docs/subscriptions.md, "Trials"): a phone sign-up (its first
// proven code), a social first sign-in, an admin's CreateUser (with a password,
// or an invitation, whose trial under `trial_start` "verification" starts when
// it is accepted), and a guest — which starts none until it is upgraded, and
// then starts it whatever `trial_start` says. Each mode is checked through
// ValidateSession, as a service sees it. The server runs without delivery:
// codes and invitations are read from its outbox (test/support/sms-outbox.ts).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { SubscriptionStatus as Status } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, type Caller } from "../support/clients.ts";
import { registerAsGoogle, startOidcProvider, type TestOidcProvider } from "../support/oidc-provider.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { lastCode, queuedMessages } from "../support/sms-outbox.ts";

const PASSWORD = "correct horse battery staple";
const DAY = 86_400_000;
const unique = () => randomBytes(5).toString("hex");
let seq = 0;
const newPhone = () => `+3362${String(Date.now() % 1_000_000).padStart(6, "0")}${seq++ % 10}`;
let ipSeq = 0;
const freshIp = () => `10.78.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

describe.each(BACKENDS)("trials for every kind of account on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let google: TestOidcProvider;
  let googleId: string;
  let root: Record<string, string>;

  beforeAll(async () => {
    google = await startOidcProvider();
    server = await startTestServer(backend, {
      env: { SOCIAL_ALLOW_HTTP_LOOPBACK: "true", TRUSTED_PROXIES: "1" },
      runtime: { deliver: false, purgeIntervalMs: 0, jwksCooldownMs: 0 },
    });
    api = createCaller("connect-json-h1", server.baseUrl);
    const rootEmail = `root.trials.${unique()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } });
    root = { authorization: `Bearer ${signedIn.sessionToken}` };
    googleId = await registerAsGoogle(api, google, root);
    const plans = [
      { id: "free", name: "Free", rank: 0, entitlements: [], free: true },
      { id: "pro", name: "Pro", rank: 20, entitlements: ["exports"], trialDays: 14 },
    ];
    for (const plan of plans) await api.call(AdminService.method.setPlan, { plan, reason: "launch pricing" }, root);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await google?.close();
  });

  const trialStart = (mode: "sign_up" | "verification") =>
    api.call(
      AdminService.method.updateTenant,
      { tenant: { id: "default", settings: { trialPlan: "pro", trialStart: mode } }, updateMask: { paths: ["settings.trial_plan", "settings.trial_start"] } },
      root,
    );
  /** [plan, status, days left] as ValidateSession and the account tell them. */
  async function subscriptionOf(sessionToken: string) {
    const valid = await api.call(SessionService.method.validateSession, { sessionToken });
    const account = await server.runtime.app.accounts.get("default", valid.accountId);
    const days = account.planExpiresAt === null ? null : Math.round((account.planExpiresAt - Date.now()) / DAY);
    return [valid.planId, valid.subscriptionStatus, days];
  }
  const TRIAL = ["pro", Status.TRIALING, 14];
  const NO_TRIAL = ["free", Status.UNSPECIFIED, null];

  function person() {
    const ip = freshIp();
    const headers = (token?: string) => ({ "x-forwarded-for": ip, ...(token ? { authorization: `Bearer ${token}` } : {}) });
    return {
      headers,
      async phoneSignUp(phone: string) {
        await api.call(SessionService.method.sendSignInCode, { phone, locale: "en" }, headers());
        return api.call(SessionService.method.signIn, { method: { case: "phoneCode", value: { phone, code: await lastCode(server, phone) } } }, headers());
      },
      guest: () => api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, headers()),
      async addPhone(token: string, phone: string) {
        await api.call(IdentityService.method.addPhone, { phone }, headers(token));
        await api.call(IdentityService.method.verifyPhone, { phone, code: await lastCode(server, phone) }, headers(token));
      },
    };
  }

  async function socialSignUp() {
    const started = await api.call(SessionService.method.startSocialSignIn, { providerId: googleId, redirectUri: google.redirectUri });
    google.signInAs({ sub: `g-${unique()}`, email: `social.${unique()}@gmail.test`, emailVerified: true, name: "Grace" });
    const back = await google.browse(started.authorizationUrl);
    const done = await api.call(SessionService.method.completeSocialSignIn, {
      state: back.get("state") ?? "",
      code: back.get("code") ?? "",
      iss: back.get("iss") ?? "",
    });
    expect(done.accountCreated).toBe(true);
    return done;
  }

  async function adminCreated(withPassword: boolean) {
    const email = `admin.made.${unique()}@example.test`;
    const { account } = await api.call(AdminService.method.createUser, withPassword ? { email, password: PASSWORD } : { email, sendWelcome: true }, root);
    return { email, accountId: account!.id };
  }
  const signIn = async (email: string) =>
    (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;

  async function acceptInvitation(email: string) {
    const [sent] = await queuedMessages(server, "invitation", email);
    const code = new URL(sent!.variables.link!).searchParams.get("token")!;
    await api.call(IdentityService.method.completePasswordReset, { code, newPassword: PASSWORD });
  }

  describe('with trial_start "sign_up"', () => {
    beforeAll(() => trialStart("sign_up"));

    it("a phone sign-up, a social first sign-in and an admin-created account (password or invitation) start the trial", async () => {
      const phone = await person().phoneSignUp(newPhone());
      expect(await subscriptionOf(phone.sessionToken)).toEqual(TRIAL);
      expect(await subscriptionOf((await socialSignUp()).sessionToken)).toEqual(TRIAL);
      const vouched = await adminCreated(true);
      expect(await subscriptionOf(await signIn(vouched.email))).toEqual(TRIAL);
      const invited = await adminCreated(false);
      expect((await server.runtime.app.accounts.get("default", invited.accountId)).planStatus).toBe(Status.TRIALING);
    });

    it("a phone-only account's trial ends like any other, without a mail to nobody", async () => {
      const phone = await person().phoneSignUp(newPhone());
      const mailsBefore = (await queuedMessages(server, "trial_ended", "")).length;
      expect((await server.runtime.subscriptionJob.run(Date.now() + 15 * DAY)).expired).toBeGreaterThanOrEqual(1);
      expect(await subscriptionOf(phone.sessionToken)).toEqual(["free", Status.EXPIRED, null]);
      expect(await queuedMessages(server, "trial_ended", "")).toHaveLength(mailsBefore);
    });

    it("a guest starts none; upgraded (by phone) it starts the trial, shown at once by ValidateSession", async () => {
      const me = person();
      const guest = await me.guest();
      expect(await subscriptionOf(guest.sessionToken)).toEqual(NO_TRIAL); // cached for the session
      await me.addPhone(guest.sessionToken, newPhone());
      expect(await subscriptionOf(guest.sessionToken)).toEqual(TRIAL);
    });
  });

  describe('with trial_start "verification"', () => {
    beforeAll(() => trialStart("verification"));

    it("a phone sign-up starts it at its first proven code; a social first sign-in (proven by the provider) at once", async () => {
      const me = person();
      const number = newPhone();
      await api.call(SessionService.method.sendSignInCode, { phone: number, locale: "en" }, me.headers());
      const signedIn = await api.call(
        SessionService.method.signIn,
        { method: { case: "phoneCode", value: { phone: number, code: await lastCode(server, number) } } },
        me.headers(),
      );
      expect(await subscriptionOf(signedIn.sessionToken)).toEqual(TRIAL);
      expect(await subscriptionOf((await socialSignUp()).sessionToken)).toEqual(TRIAL);
    });

    it("an admin's account with a password starts it at once; an invitation's when it is accepted", async () => {
      const vouched = await adminCreated(true);
      expect(await subscriptionOf(await signIn(vouched.email))).toEqual(TRIAL);
      const invited = await adminCreated(false);
      expect((await server.runtime.app.accounts.get("default", invited.accountId)).planStatus).toBe(Status.UNSPECIFIED);
      await acceptInvitation(invited.email);
      expect(await subscriptionOf(await signIn(invited.email))).toEqual(TRIAL);
    });

    it("a guest starts none; upgraded it starts the trial", async () => {
      const me = person();
      const guest = await me.guest();
      expect(await subscriptionOf(guest.sessionToken)).toEqual(NO_TRIAL);
      await me.addPhone(guest.sessionToken, newPhone());
      expect(await subscriptionOf(guest.sessionToken)).toEqual(TRIAL);
    });
  });
});
