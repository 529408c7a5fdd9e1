// Every RPC that checks a credential or a code, driven past a small per-tenant
// budget: ResourceExhausted with a RetryInfo delay, and allowed again once the
// injected clock passes the window; the same address in another tenant keeps
// that tenant's whole budget. The table is data: a limited RPC added later
// belongs here.
import { Code, ConnectError } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { BACKENDS } from "../support/backends.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const BUDGET = 3;
const HOUR = 3_600_000;
const PASSWORD = "correct horse battery staple";

describe.each(BACKENDS)("every limited RPC on the %s backend", (backend) => {
  let server: TestServer;
  /** A second tenant with the same budgets: its counters are its own. */
  let otherTenant = "";
  // Start just after a whole hour so every tier's fixed window is predictable.
  let offset = Math.ceil(Date.now() / HOUR) * HOUR + 1000 - Date.now();
  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" }, runtime: { now: () => Date.now() + offset } });
    const { settings } = await server.runtime.app.tenants.update(DEFAULT_TENANT_ID, (t) => ({
      name: t.name,
      settings: { ...t.settings, signUpPerIpLimit: BUDGET, codeAttemptsPerIpLimit: BUDGET, signInPerIpLimit: BUDGET, signInPerAccountLimit: 50 },
    }));
    otherTenant = (await server.runtime.app.tenants.create({ name: "Other", settings })).id;
  });
  afterAll(async () => {
    await server?.close();
  });

  let ip = 0;
  const client = (address: string, tenant?: string) => {
    const transport = createConnectTransport({
      baseUrl: server.baseUrl,
      httpVersion: "1.1",
      interceptors: [(next) => (req) => (req.header.set("x-forwarded-for", address), tenant && req.header.set("x-tenant-id", tenant), next(req))],
    });
    return { identity: createClient(IdentityService, transport), session: createClient(SessionService, transport) };
  };

  const cases: Array<[string, (api: ReturnType<typeof client>, n: number) => Promise<unknown>]> = [
    ["SignUp (per IP)", (api, n) => api.identity.signUp({ email: `limit.${n}.${Date.now()}@example.test`, password: PASSWORD })],
    [
      "SignIn (per IP)",
      (api, n) => api.session.signIn({ method: { case: "emailPassword", value: { email: `nobody.${n}@example.test`, password: PASSWORD } } }),
    ],
    ["VerifyIdentity (codes per IP)", (api) => api.identity.verifyIdentity({ token: "A".repeat(43) })],
    [
      "CompleteSecondFactor (codes per IP)",
      (api) => api.session.completeSecondFactor({ challenge: "A".repeat(43), code: { case: "totpCode", value: "123456" } }),
    ],
    ["SendSecondFactorCode (codes per IP)", (api) => api.session.sendSecondFactorCode({ challenge: "A".repeat(43) })],
    ["ResendVerification (codes per IP)", (api, n) => api.identity.resendVerification({ email: `nobody.${n}@example.test` })],
    ["StartPasswordReset (codes per IP)", (api, n) => api.identity.startPasswordReset({ email: `nobody.${n}@example.test` })],
    ["CheckPasswordResetCode (codes per IP)", (api) => api.identity.checkPasswordResetCode({ code: "A".repeat(43) })],
    [
      "CompletePasswordReset (codes per IP)",
      (api) => api.identity.completePasswordReset({ code: "A".repeat(43), newPassword: "quietly orbiting teapot lanterns" }),
    ],
    ["CompleteSocialSignIn (codes per IP)", (api) => api.session.completeSocialSignIn({ state: "A".repeat(43), code: "a-code" })],
    [
      "SignIn id_token (codes per IP)",
      (api) => api.session.signIn({ method: { case: "idToken", value: { providerId: "0197a1b2-0000-7000-8000-000000000000", idToken: "a.b.c", nonce: "n" } } }),
    ],
  ];

  it.each(cases)("%s", async (_name, call) => {
    const address = `198.51.100.${++ip}`;
    const api = client(address);
    const outcome = async (n: number) => {
      try {
        await call(api, n);
        return undefined;
      } catch (error) {
        return ConnectError.from(error);
      }
    };
    for (let n = 0; n < BUDGET; n++) expect((await outcome(n))?.code).not.toBe(Code.ResourceExhausted);
    const limited = await outcome(BUDGET);
    expect(limited?.code).toBe(Code.ResourceExhausted);
    const [retry] = limited!.findDetails(RetryInfoSchema);
    const delayMs = Number(retry?.retryDelay?.seconds ?? 0n) * 1000 + (retry?.retryDelay?.nanos ?? 0) / 1e6;
    expect(delayMs).toBeGreaterThan(0);
    expect(delayMs).toBeLessThanOrEqual(HOUR);
    // Another address is not affected; after the window, this one is allowed again (refused
    // attempts count too: hammering on would reach the hourly tier and wait longer).
    const other = client(`198.51.100.${++ip}`);
    const otherError = await call(other, 1000).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(otherError?.code, otherError?.message).not.toBe(Code.ResourceExhausted);
    // The same address in another tenant spends that tenant's budget, untouched so far (issue 9).
    const inOtherTenant = client(address, otherTenant);
    const otherTenantError = await call(inOtherTenant, 2000).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(otherTenantError?.code, otherTenantError?.message).not.toBe(Code.ResourceExhausted);
    offset += delayMs + 1;
    expect((await outcome(BUDGET + 2))?.code).not.toBe(Code.ResourceExhausted);
  });
});
