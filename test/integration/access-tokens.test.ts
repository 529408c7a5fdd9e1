// Signed access tokens end to end, verified exactly as a third-party service
// would: jose's createRemoteJWKSet on /.well-known/jwks.json (same port as the
// RPCs) and jwtVerify, with default options. Across a key rotation, a token
// signed by the old key still verifies during the overlap.
import { ConnectError, Code } from "@connectrpc/connect";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, PROTOCOLS, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PUBLISH_LEAD_MS = 300;
let seq = 0;

describe.each(BACKENDS)("signed access tokens (%s)", (backend) => {
  let server: TestServer;
  let caller: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { accessTokens: { publishLeadMs: PUBLISH_LEAD_MS } } });
    caller = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    caller?.close();
    await server?.close();
  });

  async function signedIn(): Promise<string> {
    const email = `jwt.${Date.now()}.${seq++}@example.test`;
    await caller.call(IdentityService.method.signUp, { email, password: "correct horse battery staple" });
    const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
    return (await caller.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) })).sessionToken;
  }

  const jwksUrl = () => new URL(`${server.baseUrl}/.well-known/jwks.json`);
  const verify = (token: string, jwks: ReturnType<typeof createRemoteJWKSet>) =>
    jwtVerify(token, jwks, { issuer: server.config.accessTokenIssuer, audience: "default", algorithms: ["EdDSA"], typ: "at+jwt" });

  it.each(PROTOCOLS)("IssueAccessToken over %s: a JWT of the caller's session that a third party verifies with the published keys", async (protocol) => {
    const over = createCaller(protocol, server.baseUrl);
    try {
      const sessionToken = await signedIn();
      const issued = await over.call(SessionService.method.issueAccessToken, {}, { authorization: `Bearer ${sessionToken}` });
      const valid = await caller.call(SessionService.method.validateSession, { sessionToken });
      const { payload, protectedHeader } = await verify(issued.accessToken, createRemoteJWKSet(jwksUrl()));
      expect(protectedHeader).toMatchObject({ alg: "EdDSA", typ: "at+jwt", kid: issued.keyId });
      expect(payload).toMatchObject({ sub: valid.accountId, aud: "default", tenant: "default", sid: valid.sessionId, role: "USER", aal: 1 });
      // The plan as ValidateSession answers it (no subscription here: the tenant's free plan, none set: "").
      expect([payload.plan, payload.plan_status, payload.entitlements]).toEqual([valid.planId, "none", [...valid.entitlements]]);
      expect(payload.exp! - payload.iat!).toBe(300);
      expect(BigInt(payload.exp!)).toBe(issued.expireTime!.seconds);
      // Another tenant's services (another audience) refuse it.
      await expect(jwtVerify(issued.accessToken, createRemoteJWKSet(jwksUrl()), { audience: "another-tenant" })).rejects.toThrow(/aud/);
    } finally {
      over.close();
    }
  });

  it("needs a live session: none is Unauthenticated, a revoked one too", async () => {
    const missing = await caller.call(SessionService.method.issueAccessToken, {}).catch((e: unknown) => ConnectError.from(e));
    expect((missing as ConnectError).code).toBe(Code.Unauthenticated);
    const sessionToken = await signedIn();
    await caller.call(SessionService.method.signOut, {}, { authorization: `Bearer ${sessionToken}` });
    const revoked = await caller
      .call(SessionService.method.issueAccessToken, {}, { authorization: `Bearer ${sessionToken}` })
      .catch((e: unknown) => ConnectError.from(e));
    expect((revoked as ConnectError).code).toBe(Code.Unauthenticated);
  });

  it("across a rotation: the new key is published before it signs, and tokens of the old key still verify during the overlap", async () => {
    const sessionToken = await signedIn();
    const auth = { authorization: `Bearer ${sessionToken}` };
    const before = await caller.call(SessionService.method.issueAccessToken, {}, auth);
    const oldVerifier = createRemoteJWKSet(jwksUrl());
    await verify(before.accessToken, oldVerifier);

    const next = await server.runtime.app.accessTokens.rotate();
    const listed = (await (await fetch(jwksUrl())).json()) as { keys: Array<{ kid: string; kty: string; crv: string; d?: string }> };
    expect(listed.keys.map((k) => k.kid)).toStrictEqual([before.keyId, next]);
    expect(listed.keys.every((k) => k.kty === "OKP" && k.crv === "Ed25519" && k.d === undefined)).toBe(true); // public halves only
    expect((await caller.call(SessionService.method.issueAccessToken, {}, auth)).keyId).toBe(before.keyId); // not signing yet

    await new Promise((r) => setTimeout(r, PUBLISH_LEAD_MS + 50));
    const after = await caller.call(SessionService.method.issueAccessToken, {}, auth);
    expect(after.keyId).toBe(next);
    expect(decodeProtectedHeader(after.accessToken).kid).toBe(next);
    // A verifier that fetched the keys after the rotation verifies both, old and new.
    const newVerifier = createRemoteJWKSet(jwksUrl());
    expect((await verify(before.accessToken, newVerifier)).payload.sid).toBeTruthy();
    expect((await verify(after.accessToken, newVerifier)).payload.sid).toBeTruthy();
    // And the one that fetched before still verifies the old key's tokens from its cache.
    expect((await verify(before.accessToken, oldVerifier)).payload.sid).toBeTruthy();

    // At rest: the private halves are sealed under the KEK, never in clear.
    const rows = await server.rawRows("signing_keys");
    expect(rows.map((r) => r.kid).sort()).toStrictEqual([before.keyId, next].sort());
    for (const row of rows) {
      expect(String(row.sealed_private_key).startsWith(`${server.config.keyEncryptionKeys![0]!.id}.`)).toBe(true);
      expect(String(row.sealed_private_key)).not.toMatch(/BEGIN|MC4CAQAwBQYDK2Vw/); // no PEM, no PKCS#8 Ed25519 prefix in base64
      expect(Object.keys(JSON.parse(String(row.public_jwk))).sort()).toStrictEqual(["crv", "kty", "x"]);
    }
  });
});
