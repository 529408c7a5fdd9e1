// The federation adapter (src/federation/oidc.ts) on its own against the Apple
// test double: Apple's ES256 client secret is signed once, reused while more
// than a quarter of its life is left, signed anew after that or when the
// provider's settings change — and every one the token endpoint saw verified.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FederationProvider } from "../../src/domain/ports/federation.ts";
import { SocialProviderKind } from "../../src/domain/social-providers.ts";
import { createOidcFederation } from "../../src/federation/oidc.ts";
import { startAppleDouble, type TestAppleIdentity } from "../support/oidc-provider.ts";

describe("Apple's client secret", () => {
  let apple: TestAppleIdentity;
  beforeAll(async () => {
    apple = await startAppleDouble();
  });
  afterAll(async () => {
    await apple?.close();
  });

  it("is signed once, reused, renewed when a quarter of its life is left or the provider changed", async () => {
    let now = Date.now();
    const federation = createOidcFederation({ timeoutMs: 5000, allowHttpLoopback: true, appleSecretLifetimeMs: 60_000, now: () => now });
    let provider: FederationProvider = {
      id: "apple-provider",
      kind: SocialProviderKind.APPLE,
      issuer: apple.issuer,
      clientId: apple.clientId,
      clientSecret: "",
      apple: { teamId: apple.teamId, keyId: apple.keyId, privateKey: apple.privateKeyPem },
      updatedAt: 1,
    };
    const verifier = "v".repeat(43);
    const signIn = async () => {
      const url = await federation.authorizationUrl(provider, {
        redirectUri: apple.redirectUri,
        scopes: ["openid", "email"],
        state: "state",
        nonce: "nonce",
        codeChallenge: createHash("sha256").update(verifier).digest("base64url"),
      });
      const code = apple.authorize(url, { sub: "001.person" });
      return federation.redeemCode(provider, { code, redirectUri: apple.redirectUri, codeVerifier: verifier, nonce: "nonce" });
    };
    const distinct = () => new Set(apple.clientSecrets.map((s) => s.jwt)).size;

    expect((await signIn()).subject).toBe("001.person");
    await signIn();
    expect(distinct()).toBe(1);
    now += 40_000; // 20 s of 60 left: more than a quarter, still reused
    await signIn();
    expect(distinct()).toBe(1);
    now += 6_000; // 14 s left: less than a quarter, signed anew
    await signIn();
    expect(distinct()).toBe(2);
    provider = { ...provider, updatedAt: 2 }; // the admin changed the provider (a new key, say)
    await signIn();
    expect(distinct()).toBe(3);
    expect(apple.clientSecrets.every((s) => s.valid)).toBe(true);
  });
});
