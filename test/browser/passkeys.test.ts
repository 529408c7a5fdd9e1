// Passkeys (src/domain/passkeys.ts) end to end in Chromium with a virtual
// authenticator (CDP WebAuthn: ctap2, internal, resident keys, user
// verification): registered on the account page while signed in, then a
// sign-in without a password, then the second factor of a password sign-in
// (AAL2); the answer of a sign-in replayed is refused (single-use challenge);
// removal needs step-up. The relying party is PUBLIC_URL's host (localhost).
import { Code } from "@connectrpc/connect";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { SecondFactorKind } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { launchChromium } from "../support/browser.ts";
import { type Caller, createCaller, refusal } from "../support/clients.ts";
import { freePort } from "../support/main-process.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const ARTIFACTS = "test-artifacts/passkeys";
const PASSWORD = "correct horse battery staple";

describe("passkeys in Chromium with a virtual authenticator", () => {
  let server: TestServer;
  let browser: Browser;
  let api: Caller;
  let origin: string;

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    server = await startTestServer("embedded", { env: { PORT: String(port), PUBLIC_URL: origin } });
    api = createCaller("connect-json-h1", server.baseUrl);
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    api?.close();
    await server?.close();
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const sessionToken = (page: Page) => page.evaluate(() => sessionStorage.getItem("identity.session"));
  const statusText = (page: Page) => page.locator("#status").textContent();

  async function withAuthenticator(context: BrowserContext, page: Page) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
  }

  it("registers a passkey, signs in with it without a password, answers a password sign-in's second factor; replay refused; removal needs step-up", async () => {
    const email = `passkey.${Date.now()}@example.test`;
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    const aal1Token = verified.sessionToken;

    const context = await browser.newContext({ locale: "en-US" });
    const page = await context.newPage();
    await withAuthenticator(context, page);
    try {
      // Signed in (the verification's session), register a passkey on the account page.
      await page.goto(`${origin}/ui/sign-in`);
      await page.evaluate((token) => sessionStorage.setItem("identity.session", token), aal1Token);
      await page.goto(`${origin}/ui/account`);
      await page.getByRole("button", { name: "Add a passkey" }).click();
      await expect.poll(() => statusText(page)).toContain("Passkey added.");
      await page.locator("[data-factor]").first().waitFor();
      await page.screenshot({ path: `${ARTIFACTS}/account-with-passkey.png`, fullPage: true });
      const { factors } = await api.call(AccountService.method.listSecondFactors, {}, bearer(aal1Token));
      expect(factors.map((f) => f.kind)).toEqual([SecondFactorKind.PASSKEY]);
      // Stored: the sealed credential (no credential id in clear), the counter as the last used step.
      const [row] = (await server.rawRows("second_factors")).filter((r) => r.id === factors[0]!.id);
      expect(row).toMatchObject({ kind: 4 });
      expect(row!.confirmed_at).not.toBeNull();
      // The enrollment is an event of the account, as a TOTP enrollment is.
      expect((await server.rawRows("events")).filter((e) => e.account_id === verified.accountId).map((e) => e.type)).toContain("second_factor.enrolled");
      // And the person is told by mail, as for an authenticator app.
      await server.waitForMail(email, (m) => /second factor was added/.test(m.subject));

      // Removal at AAL1 (the verification's session) needs step-up.
      expect((await refusal(api.call(AccountService.method.removeSecondFactor, { factorId: factors[0]!.id }, bearer(aal1Token)))).code).toBe(
        Code.PermissionDenied,
      );

      // Sign out; sign in with the passkey, no password: AAL2, method "passkey".
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/ui\/sign-in$/);
      let signInBody: string | null = null;
      page.on("request", (request) => {
        if (request.url().endsWith("/identity.v1.SessionService/SignIn")) signInBody = request.postData();
      });
      await page.getByRole("button", { name: "Sign in with a passkey" }).click();
      await page.waitForURL(/\/ui\/account$/);
      const passkeyToken = (await sessionToken(page))!;
      const passkeySession = await api.call(SessionService.method.validateSession, { sessionToken: passkeyToken });
      expect(passkeySession.assuranceLevel).toBe(2);
      expect(passkeySession.authenticationMethods.map((m) => m.method)).toEqual(["passkey"]);
      expect(passkeySession.accountId).toBe(verified.accountId);
      // Recorded as a sign-in.
      const signIns = async () =>
        (await server.runtime.app.audit.list({ tenantId: "default", action: "session.sign_in_passkey", pageSize: 10, pageToken: "" })).events.map((e) => [
          e.outcome,
          e.target,
        ]);
      await expect.poll(signIns).toEqual([["success", expect.stringContaining(verified.accountId)]]);

      // The same answer again: its challenge is used up.
      expect(signInBody).toContain("passkey");
      const replay = await fetch(`${server.baseUrl}/identity.v1.SessionService/SignIn`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: signInBody!,
      });
      expect([replay.status, ((await replay.json()) as { code: string }).code]).toEqual([401, "unauthenticated"]);

      // A password sign-in now asks for the second factor; the passkey answers it.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/ui\/sign-in$/);
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await page.getByLabel("Password", { exact: true }).press("Enter");
      await page.getByRole("heading", { name: "Second step" }).waitFor();
      await page.screenshot({ path: `${ARTIFACTS}/second-factor.png`, fullPage: true });
      await page.getByRole("button", { name: "Use a passkey" }).click();
      await page.waitForURL(/\/ui\/account$/);
      const aal2Token = (await sessionToken(page))!;
      const stepUp = await api.call(SessionService.method.validateSession, { sessionToken: aal2Token });
      expect(stepUp.assuranceLevel).toBe(2);
      expect(stepUp.authenticationMethods.map((m) => m.method)).toEqual(["password", "passkey"]);

      // At AAL2 the page removes it; a passkey sign-in then fails.
      await page.locator("[data-factor]").first().getByRole("button", { name: "Remove" }).click();
      await page.locator("[data-factor]").first().waitFor({ state: "detached" });
      expect((await api.call(AccountService.method.listSecondFactors, {}, bearer(aal2Token))).factors).toEqual([]);
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/ui\/sign-in$/);
      await page.getByRole("button", { name: "Sign in with a passkey" }).click();
      await expect.poll(() => statusText(page)).toMatch(/INVALID_CREDENTIALS/);
    } finally {
      await context.close();
    }
  }, 120_000);
});
