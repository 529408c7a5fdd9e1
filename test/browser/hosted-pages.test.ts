// The hosted pages (/ui/, docs/hosted-pages.md) in a real browser: Debian's
// Chromium driven by playwright-core, one browser for the file, against a real
// server on the embedded backend with the SMTP capture. The journey: sign up,
// open the mailed link, sign out and in, edit the profile, revoke another
// session, reset the password from the mailed link and sign in with the new
// one; then the pages in French and their security headers. Screenshots of the
// key pages go to test-artifacts/hosted-pages/ (not committed).
import { mkdirSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { launchChromium } from "../support/browser.ts";
import { createCaller, codeOf, type Caller } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { Code } from "@connectrpc/connect";

const ARTIFACTS = "test-artifacts/hosted-pages";
const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "quietly orbiting teapot lanterns";

describe("hosted pages in Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  let api: Caller;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startTestServer("embedded");
    api = createCaller("connect-json-h1", server.baseUrl);
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    api?.close();
    await server?.close();
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
  /** The path and query of a mailed link, which must point at the hosted pages under PUBLIC_URL. */
  function mailedLink(text: string, page: string): string {
    const match = new RegExp(`https://app\\.example\\.test(/ui/${page}\\?token=[A-Za-z0-9_-]+)`).exec(text);
    if (!match?.[1]) throw new Error(`no /ui/${page} link in: ${text}`);
    return `${server.baseUrl}${match[1]}`;
  }
  const sessionToken = (page: Page) => page.evaluate(() => sessionStorage.getItem("identity.session"));

  it("the journey: sign up, the mailed link, sign in, profile, revoke a session, reset the password by mail", async () => {
    const context = await browser.newContext({ locale: "en-US" });
    const page = await context.newPage();
    const email = `browser.${Date.now()}@example.test`;
    try {
      // Sign up.
      await page.goto(`${server.baseUrl}/ui/sign-up`);
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await shot(page, "sign-up");
      await page.getByRole("button", { name: "Create an account" }).click();
      await expect.poll(() => page.locator("#status").textContent()).toContain("Check your mail");

      // The mailed link opens the verification page, which signs in.
      const verification = await server.waitForMail(email, (m) => m.text.includes("/ui/verify-email?token="));
      await page.goto(mailedLink(verification.text, "verify-email"));
      await page.getByRole("heading", { name: "Your address is verified and you are signed in." }).waitFor();
      await shot(page, "verified");
      expect(await sessionToken(page)).toMatch(/.+/);

      // The account page; sign out, then sign in with the password (keyboard only: Enter submits).
      await page.getByRole("link", { name: "Go to your account" }).click();
      await page.getByRole("heading", { name: "Profile" }).waitFor();
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/ui\/sign-in$/);
      expect(await sessionToken(page)).toBeNull();
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await shot(page, "sign-in");
      await page.getByLabel("Password", { exact: true }).press("Enter");
      await page.waitForURL(/\/ui\/account$/);
      await page.getByRole("heading", { name: "Sessions" }).waitFor();
      const token = (await sessionToken(page))!;

      // Edit the profile; the service has it.
      await page.getByLabel("Display name").fill("Ann Browser");
      await page.getByRole("button", { name: "Save" }).click();
      await expect.poll(() => page.locator("#status").textContent()).toBe("Saved.");
      const { account } = await api.call(AccountService.method.getAccount, {}, { authorization: `Bearer ${token}` });
      expect(account?.displayName).toBe("Ann Browser");

      // Another session (another device); the page lists it and revokes it.
      const other = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
      const otherId = (await api.call(SessionService.method.validateSession, { sessionToken: other.sessionToken })).sessionId;
      await page.reload();
      const row = page.locator(`[data-session="${otherId}"]`);
      await row.waitFor();
      await shot(page, "account");
      await row.getByRole("button", { name: /Revoke/ }).click();
      await expect.poll(() => page.locator("#status").textContent()).toBe("Session revoked.");
      await row.waitFor({ state: "detached" });
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: other.sessionToken }))).toBe(Code.Unauthenticated);
      expect((await api.call(SessionService.method.validateSession, { sessionToken: token })).sessionId).not.toBe(otherId);

      // Forgotten password: the mailed link opens the reset page; the new password signs in.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/ui\/sign-in$/);
      await page.getByRole("link", { name: "Forgotten password?" }).click();
      await page.getByLabel("Email address").fill(email);
      await page.getByRole("button", { name: "Continue" }).click();
      await expect.poll(() => page.locator("#status").textContent()).toContain("a link to reset its password is on its way");
      const reset = await server.waitForMail(email, (m) => m.text.includes("/ui/reset-password?token="));
      await page.goto(mailedLink(reset.text, "reset-password"));
      await page.getByLabel("New password").fill(NEW_PASSWORD);
      await shot(page, "reset-password");
      await page.getByRole("button", { name: "Save" }).click();
      await expect.poll(() => page.locator("#status").textContent()).toContain("Your password is changed");
      await page.getByRole("link", { name: "Sign in" }).click();
      await page.getByLabel("Email address").fill(email);
      await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await page.getByLabel("Password", { exact: true }).press("Enter");
      await expect.poll(() => page.locator("#status").textContent()).toMatch(/INVALID_CREDENTIALS/);
      await page.getByLabel("Password", { exact: true }).fill(NEW_PASSWORD);
      await page.getByLabel("Password", { exact: true }).press("Enter");
      await page.waitForURL(/\/ui\/account$/);
      await page.getByRole("heading", { name: "Profile" }).waitFor();
    } finally {
      await context.close();
    }
  }, 90_000);

  it("French by Accept-Language, a switch to English; security headers; nothing inline", async () => {
    const context = await browser.newContext({ locale: "fr-FR" });
    const page = await context.newPage();
    try {
      const response = await page.goto(`${server.baseUrl}/ui/sign-in`);
      const headers = response!.headers();
      expect(headers["content-security-policy"]).toContain("script-src 'self'");
      expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
      expect(headers["content-security-policy"]).not.toContain("unsafe-inline");
      expect(headers["referrer-policy"]).toBe("no-referrer");
      expect(headers["cache-control"]).toBe("no-store");
      await page.getByRole("heading", { name: "Se connecter" }).waitFor();
      await shot(page, "sign-in-fr");
      expect(await page.locator("html").getAttribute("lang")).toBe("fr");
      // The switch, by keyboard.
      await page.getByRole("button", { name: "English" }).focus();
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: "Sign in" }).waitFor();
      expect(await page.locator("script:not([src])").count()).toBe(0);
      // Unknown pages say so; /ui redirects to /ui/.
      await page.goto(`${server.baseUrl}/ui/nowhere`);
      await page.getByRole("heading", { name: "This page does not exist." }).waitFor();
      const bare = await fetch(`${server.baseUrl}/ui`, { redirect: "manual" });
      expect([bare.status, bare.headers.get("location")]).toEqual([308, "/ui/"]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
