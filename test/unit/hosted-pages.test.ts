// Where mail links point (the hosted pages unless the tenant sets
// link_base_url) and how /ui/ files are answered: every page is index.html,
// the two assets by name, all with the pages' security headers; 404 when the
// pages were not built. The pages themselves run in Chromium: test/browser.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { linkBase } from "../../src/domain/found-identity.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import type { Tenant } from "../../src/domain/types.ts";
import { serveUi, UI_HEADERS } from "../../src/server/ui.ts";

const tenant = (linkBaseUrl: string) => ({ id: "t", settings: { ...DEFAULT_TENANT_SETTINGS, linkBaseUrl } }) as unknown as Tenant;

describe("mail link base", () => {
  it("is PUBLIC_URL/ui by default, the tenant's link_base_url when set (trailing slashes dropped)", () => {
    expect(linkBase(tenant(""), "https://id.example.com/")).toBe("https://id.example.com/ui");
    expect(linkBase(tenant("https://shop.example.com/account/"), "https://id.example.com")).toBe("https://shop.example.com/account");
  });
});

describe("serveUi", () => {
  const dist = mkdtempSync(join(tmpdir(), "ui-dist-"));
  writeFileSync(join(dist, "index.html"), "<!doctype html><title>x</title>");
  writeFileSync(join(dist, "app.js"), "console.log(1)");
  writeFileSync(join(dist, "app.css"), "body{}");
  afterAll(() => rmSync(dist, { recursive: true, force: true }));

  it("answers every page with index.html, no-store, and the security headers", async () => {
    for (const path of ["/ui/", "/ui/sign-in", "/ui/reset-password", "/ui/../../etc/passwd"]) {
      const answer = await serveUi(path, dist);
      expect([answer.status, String(answer.body), answer.headers["content-type"], answer.headers["cache-control"]]).toEqual([
        200,
        "<!doctype html><title>x</title>",
        "text/html; charset=utf-8",
        "no-store",
      ]);
      expect(answer.headers).toMatchObject(UI_HEADERS);
    }
    expect(UI_HEADERS["content-security-policy"]).toMatch(/frame-ancestors 'none'/);
    expect(UI_HEADERS["content-security-policy"]).not.toMatch(/unsafe/);
    expect(UI_HEADERS["referrer-policy"]).toBe("no-referrer");
  });

  it("answers the bundle and the stylesheet by name, and 404 when the pages were not built", async () => {
    expect((await serveUi("/ui/app.js", dist)).headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(String((await serveUi("/ui/app.css", dist)).body)).toBe("body{}");
    const missing = await serveUi("/ui/", join(dist, "nowhere"));
    expect([missing.status, String(missing.body)]).toEqual([404, "hosted pages not built (npm run build:ui)\n"]);
  });
});
