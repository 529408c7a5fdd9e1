// The passkeys' relying party per tenant (src/domain/passkeys.ts) and the
// checks of its settings (src/domain/tenants.ts). The ceremonies themselves run
// in Chromium: test/browser/passkeys.test.ts.
import { describe, expect, it } from "vitest";
import { relyingParty } from "../../src/domain/passkeys.ts";
import { DEFAULT_TENANT_SETTINGS, tenantSettingsViolations } from "../../src/domain/tenants.ts";
import type { Tenant, TenantSettings } from "../../src/domain/types.ts";

const tenant = (settings: Partial<TenantSettings>): Tenant =>
  ({ id: "shop", name: "Shop", settings: { ...DEFAULT_TENANT_SETTINGS, ...settings }, createdAt: 0 }) as Tenant;
const fields = (settings: Partial<TenantSettings>) => tenantSettingsViolations({ ...DEFAULT_TENANT_SETTINGS, ...settings }, "settings.").map((v) => v.field);

describe("passkey relying party", () => {
  it("is PUBLIC_URL's host and origin by default, link_base_url's when set, the passkey settings when set", () => {
    expect(relyingParty(tenant({}), "https://id.example.com")).toEqual({ id: "id.example.com", origins: ["https://id.example.com"], name: "Shop" });
    expect(relyingParty(tenant({ linkBaseUrl: "https://shop.example.org/account" }), "https://id.example.com")).toMatchObject({
      id: "shop.example.org",
      origins: ["https://shop.example.org"],
    });
    expect(
      relyingParty(tenant({ passkeyRpId: "example.org", passkeyOrigins: ["https://a.example.org", "https://b.example.org:8443"] }), "https://id.example.com"),
    ).toMatchObject({ id: "example.org", origins: ["https://a.example.org", "https://b.example.org:8443"] });
  });

  it("settings: a host name, origins (scheme, host, port) on it or its subdomains", () => {
    expect(fields({ passkeyRpId: "example.org", passkeyOrigins: ["https://example.org", "https://app.example.org"] })).toEqual([]);
    expect(fields({ passkeyRpId: "https://example.org" })).toEqual(["settings.passkey_rp_id"]);
    expect(fields({ passkeyOrigins: ["https://app.example.org/path"] })).toEqual(["settings.passkey_origins"]);
    expect(fields({ passkeyOrigins: ["ftp://app.example.org"] })).toEqual(["settings.passkey_origins"]);
    expect(fields({ passkeyRpId: "example.org", passkeyOrigins: ["https://evil-example.org"] })).toEqual(["settings.passkey_origins"]);
  });
});
