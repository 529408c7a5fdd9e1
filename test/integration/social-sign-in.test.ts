// Social sign-in end to end, against a real OpenID provider (panva's
// oidc-provider on a loopback port, as "Google") and a test double of Apple's
// token endpoint that verifies the ES256 client secret:
// - AdminService manages providers; secrets go in and never come out;
// - the web flow (StartSocialSignIn → provider → CompleteSocialSignIn) creates
//   the account on the first sign-in and reaches it on later ones; the state
//   is single-use and bound to its tenant;
// - a signed-in person links a provider; a verified provider email of an
//   existing account is refused with SOCIAL_LINK_REQUIRED, never linked;
// - the native flow (SignIn id_token) checks signature, issuer, audience,
//   expiry and nonce, and follows the provider's key rotation;
// - Apple: the client-secret JWT, form_post's `user` name, private-relay email;
// - export lists the linked provider without secrets; erasure removes it.
import { randomBytes } from "node:crypto";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService, SocialProviderKind } from "../../gen/identity/v1/admin_service_pb.js";
import { AssuranceLevel, IdentityKind } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { startAppleDouble, registerAsGoogle, startOidcProvider, type TestAppleIdentity, type TestOidcProvider } from "../support/oidc-provider.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";
/** JSON of a response, int64 fields included. */
const json = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? String(v) : v));

/** "Code REASON" of a refused call. */
async function refused(call: Promise<unknown>): Promise<string> {
  const e = await refusal(call);
  return `${Code[e.code]} ${e.findDetails(ErrorInfoSchema)[0]?.reason ?? ""}`.trim();
}

describe.each(BACKENDS)("social sign-in on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let google: TestOidcProvider;
  let apple: TestAppleIdentity;
  let adminBearer: Record<string, string>;
  let googleId: string;
  let appleId: string;
  const unique = () => randomBytes(5).toString("hex");

  beforeAll(async () => {
    google = await startOidcProvider();
    apple = await startAppleDouble();
    server = await startTestServer(backend, { env: { SOCIAL_ALLOW_HTTP_LOOPBACK: "true" }, runtime: { jwksCooldownMs: 0 } });
    api = createCaller("connect-json-h1", server.baseUrl);
    const rootEmail = `root.social.${unique()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const root = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } });
    adminBearer = { authorization: `Bearer ${root.sessionToken}` };
    googleId = await registerAsGoogle(api, google, adminBearer);
    appleId = (
      await api.call(
        AdminService.method.createSocialProvider,
        {
          provider: {
            kind: SocialProviderKind.APPLE,
            name: "Apple (test double)",
            issuer: apple.issuer,
            clientId: apple.clientId,
            redirectUris: [apple.redirectUri],
            apple: { teamId: apple.teamId, keyId: apple.keyId },
          },
          applePrivateKey: apple.privateKeyPem,
        },
        adminBearer,
      )
    ).provider!.id;
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await google?.close();
    await apple?.close();
  });

  /** The whole web flow at "Google" for `person`; `bearer` to link. */
  async function googleSignIn(person: { sub: string; email?: string; emailVerified?: boolean; name?: string }, bearer: Record<string, string> = {}) {
    const started = await api.call(SessionService.method.startSocialSignIn, { providerId: googleId, redirectUri: google.redirectUri }, bearer);
    google.signInAs(person);
    const back = await google.browse(started.authorizationUrl);
    expect(back.get("state")).toBe(started.state);
    return { started, back };
  }

  async function complete(back: URLSearchParams, extra: { user?: string } = {}) {
    return api.call(SessionService.method.completeSocialSignIn, {
      state: back.get("state") ?? "",
      code: back.get("code") ?? "",
      iss: back.get("iss") ?? "",
      profileMask: { paths: ["email", "display_name"] },
      ...extra,
    });
  }

  async function passwordAccount(email: string) {
    await api.call(AdminService.method.createUser, { email, password: PASSWORD }, adminBearer);
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    return { accountId: signedIn.accountId, bearer: { authorization: `Bearer ${signedIn.sessionToken}` } };
  }

  describe("providers (AdminService)", () => {
    it("are created, listed, updated and deleted, audited, and never give back a secret", async () => {
      const secret = `s3cret-${unique()}`;
      const created = await api.call(
        AdminService.method.createSocialProvider,
        {
          provider: { kind: SocialProviderKind.OIDC, name: "Corp SSO", issuer: google.issuer, clientId: "corp", redirectUris: ["https://app.example.test/a"] },
          clientSecret: secret,
        },
        adminBearer,
      );
      const p = created.provider!;
      expect(p.clientSecretSet).toBe(true);
      expect(p.scopes).toEqual(["openid", "email", "profile"]);
      expect(json(created)).not.toContain(secret);
      const listed = await api.call(AdminService.method.listSocialProviders, {}, adminBearer);
      expect(listed.providers.map((x) => x.id)).toEqual(expect.arrayContaining([googleId, appleId, p.id]));
      expect(json(listed)).not.toContain(secret);
      expect(json(listed)).not.toContain("PRIVATE KEY");
      expect(listed.providers.find((x) => x.id === appleId)?.apple?.privateKeySet).toBe(true);

      const updated = await api.call(
        AdminService.method.updateSocialProvider,
        { provider: { id: p.id, redirectUris: ["https://app.example.test/b"], name: "Corp" }, updateMask: { paths: ["redirect_uris", "name"] } },
        adminBearer,
      );
      expect(updated.provider?.redirectUris).toEqual(["https://app.example.test/b"]);
      expect(updated.provider?.name).toBe("Corp");
      expect(updated.provider?.clientId).toBe("corp");
      expect(await refused(api.call(AdminService.method.updateSocialProvider, { provider: { id: p.id }, updateMask: { paths: ["kind"] } }, adminBearer))).toBe(
        "InvalidArgument INVALID_ARGUMENT",
      );

      await api.call(AdminService.method.deleteSocialProvider, { providerId: p.id }, adminBearer);
      expect(await refused(api.call(AdminService.method.deleteSocialProvider, { providerId: p.id }, adminBearer))).toBe("NotFound SOCIAL_PROVIDER_NOT_FOUND");
      expect(await refused(api.call(SessionService.method.startSocialSignIn, { providerId: p.id, redirectUri: "https://app.example.test/b" }))).toBe(
        "NotFound SOCIAL_PROVIDER_NOT_FOUND",
      );
      const events = await api.call(AdminService.method.listAuditEvents, { pageSize: 200 }, adminBearer);
      const actions = events.events.filter((e) => e.target === `social_provider:${p.id}`).map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(["social_provider.create", "social_provider.update", "social_provider.delete"]));
    });

    it("refuse bad input naming the field", async () => {
      const violations = async (input: Parameters<typeof api.call<typeof AdminService.method.createSocialProvider.input, never>>[1]) => {
        const e = await refusal(api.call(AdminService.method.createSocialProvider, input as never, adminBearer));
        expect(e.code).toBe(Code.InvalidArgument);
        return e.rawMessage;
      };
      expect(
        await violations({ provider: { kind: SocialProviderKind.OIDC, name: "x", clientId: "c", redirectUris: ["https://a.test/"] }, clientSecret: "s" }),
      ).toContain("provider.issuer");
      expect(
        await violations({
          provider: { kind: SocialProviderKind.OIDC, name: "x", issuer: "http://idp.example.test", clientId: "c", redirectUris: ["https://a.test/"] },
          clientSecret: "s",
        }),
      ).toContain("provider.issuer");
      expect(await violations({ provider: { kind: SocialProviderKind.GOOGLE, name: "x", redirectUris: ["https://a.test/"] } })).toMatch(
        /provider\.client_id.*client_secret|client_secret.*provider\.client_id/,
      );
      expect(
        await violations({ provider: { kind: SocialProviderKind.GOOGLE, name: "x", clientId: "c", redirectUris: ["javascript:alert(1)"] }, clientSecret: "s" }),
      ).toContain("provider.redirect_uris[0]");
      expect(
        await violations({
          provider: {
            kind: SocialProviderKind.APPLE,
            name: "x",
            clientId: "c",
            redirectUris: ["https://a.test/"],
            apple: { teamId: "short", keyId: "ABCDEFGHIJ" },
          },
          applePrivateKey: "not a key",
        }),
      ).toMatch(/provider\.apple\.team_id.*apple_private_key/);
      expect(await violations({ provider: { name: "x", clientId: "c", redirectUris: ["https://a.test/"] }, clientSecret: "s" })).toContain("provider.kind");
    });
  });

  describe("the web flow", () => {
    it("asks for a code with PKCE (S256), a state and a nonce, only to an allowed redirect URI", async () => {
      const started = await api.call(SessionService.method.startSocialSignIn, { providerId: googleId, redirectUri: google.redirectUri });
      const url = new URL(started.authorizationUrl);
      expect(url.origin).toBe(google.issuer);
      expect(url.searchParams.get("code_challenge_method")).toBe("S256");
      expect(url.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(url.searchParams.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(url.searchParams.get("state")).toBe(started.state);
      expect(url.searchParams.get("scope")).toBe("openid email profile");
      const e = await refusal(api.call(SessionService.method.startSocialSignIn, { providerId: googleId, redirectUri: "https://evil.example.test/cb" }));
      expect(e.code).toBe(Code.InvalidArgument);
      expect(e.rawMessage).toContain("redirect_uri");
    });

    it("creates the account on the first sign-in, and reaches the same account on the next", async () => {
      const person = { sub: `g-${unique()}`, email: `first.${unique()}@gmail.test`, emailVerified: true, name: "Grace Hopper" };
      const first = await complete((await googleSignIn(person)).back);
      expect(first.accountCreated).toBe(true);
      expect(first.linked).toBe(false);
      expect(first.profile?.email).toBe(person.email);
      expect(first.profile?.displayName).toBe("Grace Hopper");
      const valid = await api.call(SessionService.method.validateSession, { sessionToken: first.sessionToken });
      expect(valid.accountId).toBe(first.accountId);
      const oidcIdentity = (await api.call(IdentityService.method.listIdentities, {}, { authorization: `Bearer ${first.sessionToken}` })).identities.find(
        (i) => i.kind === IdentityKind.OIDC,
      );
      expect(oidcIdentity).toMatchObject({ value: person.sub, issuer: google.issuer, verified: true });
      expect(valid.authenticationMethods.map((m) => [m.method, m.identityId])).toEqual([["oidc", oidcIdentity!.id]]);

      const second = await complete((await googleSignIn(person)).back);
      expect(second.accountCreated).toBe(false);
      const audit = await api.call(
        AdminService.method.listAuditEvents,
        { action: "session.social_sign_in", target: `account:${first.accountId}`, pageSize: 50 },
        adminBearer,
      );
      expect(audit.events.map((e) => e.outcome)).toEqual(["ACCOUNT_CREATED", "success"]);
      expect(second.accountId).toBe(first.accountId);
      expect(second.sessionToken).not.toBe(first.sessionToken);
    });

    it("refuses a wrong state, a replayed state and a state of another tenant", async () => {
      const person = { sub: `g-${unique()}` };
      const { back } = await googleSignIn(person);
      // Another state: the real one with its first character changed.
      const state = back.get("state")!;
      const wrongState = `${state[0] === "A" ? "B" : "A"}${state.slice(1)}`;
      expect(await refused(api.call(SessionService.method.completeSocialSignIn, { state: wrongState, code: back.get("code")! }))).toBe(
        "Unauthenticated SOCIAL_STATE_INVALID",
      );
      const tenant = await api.call(AdminService.method.createTenant, { name: `other-${unique()}` }, adminBearer);
      expect(
        await refused(
          api.call(SessionService.method.completeSocialSignIn, { state: back.get("state")!, code: back.get("code")! }, { "x-tenant-id": tenant.tenant!.id }),
        ),
      ).toBe("Unauthenticated SOCIAL_STATE_INVALID");
      // That attempt used the state up: single-use, whoever tries first.
      expect(await refused(complete(back))).toBe("Unauthenticated SOCIAL_STATE_INVALID");

      const again = await googleSignIn(person);
      const ok = await complete(again.back);
      expect(ok.accountCreated).toBe(true);
      expect(await refused(complete(again.back))).toBe("Unauthenticated SOCIAL_STATE_INVALID");
      expect(await refused(api.call(SessionService.method.completeSocialSignIn, { state: "", code: "c" }))).toBe("InvalidArgument INVALID_ARGUMENT");
    });

    it("refuses a code the provider does not know", async () => {
      const { back } = await googleSignIn({ sub: `g-${unique()}` });
      expect(await refused(api.call(SessionService.method.completeSocialSignIn, { state: back.get("state")!, code: "not-a-code" }))).toBe(
        "Unauthenticated SOCIAL_CODE_INVALID",
      );
    });

    it("links the provider to a signed-in person's account; later sign-ins through it reach that account", async () => {
      const owner = await passwordAccount(`linker.${unique()}@example.test`);
      const person = { sub: `g-${unique()}`, email: `other.${unique()}@gmail.test`, emailVerified: true };
      const linked = await complete((await googleSignIn(person, owner.bearer)).back);
      expect(linked.linked).toBe(true);
      expect(linked.accountCreated).toBe(false);
      expect(linked.accountId).toBe(owner.accountId);
      const later = await complete((await googleSignIn(person)).back);
      expect(later.accountId).toBe(owner.accountId);
      // The same provider account cannot be linked to someone else.
      const stranger = await passwordAccount(`stranger.${unique()}@example.test`);
      expect(await refused(complete((await googleSignIn(person, stranger.bearer)).back))).toBe("FailedPrecondition SOCIAL_IDENTITY_TAKEN");
    });

    it("never links by email: a verified provider email of an existing account is refused with SOCIAL_LINK_REQUIRED", async () => {
      const email = `taken.${unique()}@example.test`;
      const owner = await passwordAccount(email);
      const attacker = { sub: `g-${unique()}`, email, emailVerified: true };
      const e = await refusal(complete((await googleSignIn(attacker)).back));
      expect(e.code).toBe(Code.FailedPrecondition);
      expect(e.findDetails(ErrorInfoSchema)[0]?.reason).toBe("SOCIAL_LINK_REQUIRED");
      // Nothing was joined or created: the owner's account has only its email identity, and no account holds the subject.
      const identities = (await server.rawRows("identities")).filter((r) => r.account_id === owner.accountId);
      expect(identities).toHaveLength(1);
      expect(await refused(complete((await googleSignIn(attacker)).back))).toBe("FailedPrecondition SOCIAL_LINK_REQUIRED");
      // Signed in to that account, the person links it themself; then it signs in.
      const linked = await complete((await googleSignIn(attacker, owner.bearer)).back);
      expect(linked.accountId).toBe(owner.accountId);
      expect((await complete((await googleSignIn(attacker)).back)).accountId).toBe(owner.accountId);
    });

    it("an unverified provider email of an existing account creates a separate account (nothing is joined), without a primary email", async () => {
      const email = `unverified.${unique()}@example.test`;
      const owner = await passwordAccount(email);
      const result = await complete((await googleSignIn({ sub: `g-${unique()}`, email, emailVerified: false })).back);
      expect(result.accountCreated).toBe(true);
      expect(result.accountId).not.toBe(owner.accountId);
      expect(result.profile?.email).toBe("");
      const identities = await api.call(IdentityService.method.listIdentities, {}, { authorization: `Bearer ${result.sessionToken}` });
      expect(identities.identities.map((i) => IdentityKind[i.kind])).toEqual(["OIDC"]);
    });

    it("a deactivated account's social sign-in is refused (ACCOUNT_DEACTIVATED)", async () => {
      const person = { sub: `g-${unique()}` };
      const first = await complete((await googleSignIn(person)).back);
      await api.call(AdminService.method.deactivateUser, { accountId: first.accountId, reason: "test" }, adminBearer);
      expect(await refused(complete((await googleSignIn(person)).back))).toBe("FailedPrecondition ACCOUNT_DEACTIVATED");
    });

    it("in an invite-only tenant, refuses a first sign-in (SIGN_UP_CLOSED)", async () => {
      const tenant = (await api.call(AdminService.method.createTenant, { name: `invite-${unique()}`, settings: { inviteOnly: true } }, adminBearer)).tenant!;
      const provider = await api.call(
        AdminService.method.createSocialProvider,
        {
          tenantId: tenant.id,
          provider: { kind: SocialProviderKind.GOOGLE, name: "G", issuer: google.issuer, clientId: google.clientId, redirectUris: [google.redirectUri] },
          clientSecret: google.clientSecret,
        },
        adminBearer,
      );
      const headers = { "x-tenant-id": tenant.id };
      const started = await api.call(SessionService.method.startSocialSignIn, { providerId: provider.provider!.id, redirectUri: google.redirectUri }, headers);
      google.signInAs({ sub: `g-${unique()}` });
      const back = await google.browse(started.authorizationUrl);
      expect(await refused(api.call(SessionService.method.completeSocialSignIn, { state: back.get("state")!, code: back.get("code")! }, headers))).toBe(
        "FailedPrecondition SIGN_UP_CLOSED",
      );
      // Another tenant's provider id is unknown here.
      expect(await refused(api.call(SessionService.method.startSocialSignIn, { providerId: provider.provider!.id, redirectUri: google.redirectUri }))).toBe(
        "NotFound SOCIAL_PROVIDER_NOT_FOUND",
      );
    });
  });

  describe("with a second factor", () => {
    it("an account with TOTP answers the social sign-in (web and native) with SignIn's challenge; CompleteSecondFactor gives an AAL2 session [oidc, totp]", async () => {
      const person = { sub: `g-${unique()}`, email: `mfa.${unique()}@gmail.test`, emailVerified: true };
      const first = await complete((await googleSignIn(person)).back);
      const bearer = { authorization: `Bearer ${first.sessionToken}` };
      const started = await api.call(AccountService.method.startTotpEnrollment, {}, bearer);
      await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, bearer);

      const challenged = await complete((await googleSignIn(person)).back);
      expect(challenged.sessionToken).toBe("");
      expect(challenged.accountId).toBe(first.accountId);
      const challenge = challenged.secondFactorChallenge?.challenge ?? "";
      expect(challenge).toMatch(/\S/);
      const done = await api.call(SessionService.method.completeSecondFactor, { challenge, code: { case: "totpCode", value: appCode(started.secret, 1) } });
      const valid = await api.call(SessionService.method.validateSession, { sessionToken: done.sessionToken });
      expect(valid.assuranceLevel).toBe(AssuranceLevel.AAL2);
      expect(valid.authenticationMethods.map((m) => m.method)).toEqual(["oidc", "totp"]);

      const nonce = unique();
      const native = await api.call(SessionService.method.signIn, {
        method: {
          case: "idToken",
          value: { providerId: googleId, idToken: await google.signIdToken({ sub: person.sub, aud: google.clientId, nonce }), nonce },
        },
      });
      expect(native.sessionToken).toBe("");
      expect(native.secondFactorChallenge?.challenge).toMatch(/\S/);
    });
  });

  describe("the native flow (SignIn id_token)", () => {
    const signIn = (idToken: string, nonce: string) =>
      api.call(SessionService.method.signIn, { method: { case: "idToken", value: { providerId: googleId, idToken, nonce } } });

    it("signs in with a valid ID token, and reaches the same account as the web flow", async () => {
      const person = { sub: `g-${unique()}` };
      const web = await complete((await googleSignIn(person)).back);
      const nonce = unique();
      const token = await google.signIdToken({ sub: person.sub, aud: google.clientId, nonce });
      const native = await signIn(token, nonce);
      expect(native.accountId).toBe(web.accountId);
      // Each ID token signs in once: a copy of it replays nothing.
      expect(await refused(signIn(token, nonce))).toBe("Unauthenticated SOCIAL_TOKEN_INVALID");
      expect((await api.call(SessionService.method.validateSession, { sessionToken: native.sessionToken })).accountId).toBe(web.accountId);
    });

    it("refuses a wrong nonce, an expired token, a wrong audience, another issuer and an unknown key", async () => {
      const sub = `g-${unique()}`;
      const nonce = unique();
      expect(await refused(signIn(await google.signIdToken({ sub, aud: google.clientId, nonce: "other" }), nonce))).toBe(
        "Unauthenticated SOCIAL_TOKEN_INVALID",
      );
      expect(
        await refused(signIn(await google.signIdToken({ sub, aud: google.clientId, nonce }, { expiresIn: Math.floor(Date.now() / 1000) - 120 }), nonce)),
      ).toBe("Unauthenticated SOCIAL_TOKEN_INVALID");
      expect(await refused(signIn(await google.signIdToken({ sub, aud: "someone-else", nonce }), nonce))).toBe("Unauthenticated SOCIAL_TOKEN_INVALID");
      const unpublished = await (await import("jose")).generateKeyPair("RS256", { extractable: true });
      const forgedKey = { ...(await (await import("jose")).exportJWK(unpublished.privateKey)), kid: "forged", alg: "RS256" };
      expect(await refused(signIn(await google.signIdToken({ sub, aud: google.clientId, nonce }, { key: forgedKey }), nonce))).toBe(
        "Unauthenticated SOCIAL_TOKEN_INVALID",
      );
      expect(await refused(signIn(await google.signIdToken({ sub, aud: google.clientId, nonce }, { issuer: "https://accounts.google.com" }), nonce))).toBe(
        "Unauthenticated SOCIAL_TOKEN_INVALID",
      );
      expect(await refused(signIn("not.a.jwt", nonce))).toBe("Unauthenticated SOCIAL_TOKEN_INVALID");
      expect(await refused(signIn("", nonce))).toBe("InvalidArgument INVALID_ARGUMENT");
      expect(await refused(signIn(await google.signIdToken({ sub, aud: google.clientId, nonce }), ""))).toBe("InvalidArgument INVALID_ARGUMENT");
    });

    it("follows a key rotation at the provider: a token signed by a new kid makes it fetch the keys again", async () => {
      const sub = `g-${unique()}`;
      const nonce = unique();
      await signIn(await google.signIdToken({ sub, aud: google.clientId, nonce }), nonce);
      const before = google.jwksFetches();
      const oldToken = await google.signIdToken({ sub, aud: google.clientId, nonce });
      await google.rotateKeys();
      const signed = await signIn(await google.signIdToken({ sub, aud: google.clientId, nonce }), nonce);
      expect(signed.accountId).toMatch(/\S/);
      expect(google.jwksFetches()).toBeGreaterThan(before);
      // The withdrawn key's tokens are refused once the new key set is known.
      expect(await refused(signIn(oldToken, nonce))).toBe("Unauthenticated SOCIAL_TOKEN_INVALID");
      // And the web flow goes on with the new key.
      expect((await complete((await googleSignIn({ sub })).back)).accountId).toBe(signed.accountId);
    });
  });

  describe("Sign in with Apple", () => {
    it("redeems the code with an ES256 client-secret JWT the token endpoint verifies; keeps the first-sign-in name and the private-relay email", async () => {
      const started = await api.call(SessionService.method.startSocialSignIn, { providerId: appleId, redirectUri: apple.redirectUri });
      const url = new URL(started.authorizationUrl);
      expect(url.searchParams.get("response_mode")).toBe("form_post");
      expect(url.searchParams.get("scope")).toBe("openid email name");
      const relay = `${unique()}@privaterelay.appleid.com`;
      const sub = `001234.${unique()}`;
      const code = apple.authorize(started.authorizationUrl, { sub, email: relay, privateRelay: true });
      const user = JSON.stringify({ name: { firstName: "Ada", lastName: "Lovelace" }, email: relay });
      const first = await api.call(SessionService.method.completeSocialSignIn, {
        state: started.state,
        code,
        user,
        profileMask: { paths: ["email", "display_name"] },
      });
      expect(first.accountCreated).toBe(true);
      expect(first.profile?.displayName).toBe("Ada Lovelace");
      expect(first.profile?.email).toBe(relay);
      const identities = await api.call(IdentityService.method.listIdentities, {}, { authorization: `Bearer ${first.sessionToken}` });
      expect(identities.identities.map((i) => [IdentityKind[i.kind], i.value, i.issuer]).sort()).toEqual([
        ["EMAIL", relay, ""],
        ["OIDC", sub, apple.issuer],
      ]);
      expect(apple.clientSecrets.length).toBeGreaterThan(0);
      expect(apple.clientSecrets.every((s) => s.valid)).toBe(true);

      // Later sign-ins carry no name: the account keeps the first one; the client secret is reused, not re-signed each time.
      const again = await api.call(SessionService.method.startSocialSignIn, { providerId: appleId, redirectUri: apple.redirectUri });
      const second = await api.call(SessionService.method.completeSocialSignIn, {
        state: again.state,
        code: apple.authorize(again.authorizationUrl, { sub, email: relay, privateRelay: true }),
        profileMask: { paths: ["display_name"] },
      });
      expect(second.accountId).toBe(first.accountId);
      expect(second.profile?.displayName).toBe("Ada Lovelace");
      expect(new Set(apple.clientSecrets.map((s) => s.jwt)).size).toBe(1);
      expect(await refused(api.call(SessionService.method.completeSocialSignIn, { state: "s", code: "c", user: "{not json" }))).toBe(
        "InvalidArgument INVALID_ARGUMENT",
      );
    });
  });

  describe("a provider that does not answer", () => {
    async function providerAt(issuer: string) {
      const created = await api.call(
        AdminService.method.createSocialProvider,
        { provider: { kind: SocialProviderKind.OIDC, name: "down", issuer, clientId: "c", redirectUris: [google.redirectUri] }, clientSecret: "s" },
        adminBearer,
      );
      return created.provider!.id;
    }

    it("closed port: Unavailable PROVIDER_UNAVAILABLE, at once", async () => {
      const closed = await new Promise<number>((resolve) => {
        const probe = createNetServer().listen(0, "127.0.0.1", () => {
          const { port } = probe.address() as AddressInfo;
          probe.close(() => resolve(port));
        });
      });
      const id = await providerAt(`http://127.0.0.1:${closed}`);
      expect(await refused(api.call(SessionService.method.startSocialSignIn, { providerId: id, redirectUri: google.redirectUri }))).toBe(
        "Unavailable PROVIDER_UNAVAILABLE",
      );
    });

    it("a provider that accepts and never answers: Unavailable PROVIDER_UNAVAILABLE within SOCIAL_PROVIDER_TIMEOUT_MS, never a hang", async () => {
      const sockets: Socket[] = [];
      const silent = createNetServer((socket) => void sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
      try {
        const id = await providerAt(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
        const started = Date.now();
        expect(await refused(api.call(SessionService.method.startSocialSignIn, { providerId: id, redirectUri: google.redirectUri }))).toBe(
          "Unavailable PROVIDER_UNAVAILABLE",
        );
        const took = Date.now() - started;
        expect(took).toBeGreaterThanOrEqual(server.config.timeouts.socialProviderMs - 50);
        expect(took).toBeLessThan(server.config.timeouts.socialProviderMs + 5_000);
      } finally {
        for (const socket of sockets) socket.destroy();
        silent.close();
      }
    }, 20_000);
  });

  describe("the ID token the code redeems (web flow)", () => {
    it.each([
      ["another nonce", { nonce: "not-the-nonce-we-sent" }],
      ["another audience", { audience: "com.example.someone-else" }],
      ["already expired", { expired: true }],
    ])("is refused when it carries %s (SOCIAL_TOKEN_INVALID), and nothing is created", async (_name, tamper) => {
      const started = await api.call(SessionService.method.startSocialSignIn, { providerId: appleId, redirectUri: apple.redirectUri });
      const sub = `001234.${unique()}`;
      const code = apple.authorize(started.authorizationUrl, { sub }, tamper);
      expect(await refused(api.call(SessionService.method.completeSocialSignIn, { state: started.state, code }))).toBe("Unauthenticated SOCIAL_TOKEN_INVALID");
      // The same person with an untampered token: a new account (the refused attempt created none).
      const again = await api.call(SessionService.method.startSocialSignIn, { providerId: appleId, redirectUri: apple.redirectUri });
      const ok = await api.call(SessionService.method.completeSocialSignIn, { state: again.state, code: apple.authorize(again.authorizationUrl, { sub }) });
      expect(ok.accountCreated).toBe(true);
    });
  });

  describe("privacy", () => {
    it("export lists the linked provider (issuer, subject) without secrets; erasure removes it, and the next sign-in starts afresh", async () => {
      const person = { sub: `g-${unique()}`, email: `export.${unique()}@gmail.test`, emailVerified: true };
      const signedIn = await complete((await googleSignIn(person)).back);
      const bearer = { authorization: `Bearer ${signedIn.sessionToken}` };
      const client = createClient(AccountService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
      const parts: Array<{ section: string; records: unknown[] }> = [];
      for await (const part of client.exportAccountData({}, { headers: bearer })) parts.push(JSON.parse(part.json));
      const identities = parts.filter((p) => p.section === "identities").flatMap((p) => p.records) as Array<{
        kind: string;
        value: string;
        issuer: string;
        profile: Record<string, unknown>;
      }>;
      const oidc = identities.find((i) => i.kind === "OIDC");
      expect(oidc).toMatchObject({ value: person.sub, issuer: google.issuer, profile: { providerId: googleId, email: person.email, emailVerified: true } });
      // The verified provider address became the account's primary email, an email identity of its own.
      expect(identities.find((i) => i.kind === "EMAIL")?.value).toBe(person.email);
      const dump = JSON.stringify(parts);
      expect(dump).not.toContain(google.clientSecret);
      expect(dump).not.toContain("PRIVATE KEY");

      // A raw dump shows neither the subject, the email, nor any provider secret in clear.
      const raw = JSON.stringify(await Promise.all((await server.rawTables()).map((t) => server.rawRows(t))));
      for (const needle of [person.sub, person.email, google.clientSecret, apple.privateKeyPem.split("\n")[1]!]) expect(raw).not.toContain(needle);

      await api.call(AccountService.method.deleteAccount, {}, bearer);
      expect((await server.rawRows("identities")).filter((r) => r.account_id === signedIn.accountId)).toHaveLength(0);
      const afresh = await complete((await googleSignIn(person)).back);
      expect(afresh.accountCreated).toBe(true);
      expect(afresh.accountId).not.toBe(signedIn.accountId);
    });
  });
});
