// THE authorization matrix: every RPC of every service (enumerated from the
// generated service descriptors) × every kind of caller → the expected outcome,
// as data. An RPC without a row fails the test, so a new RPC cannot ship
// without someone deciding who may call it.
//
// Outcomes: "A" allowed — the call got past authorization (any code other than
// Unauthenticated / PermissionDenied: the dummy requests below mostly earn
// InvalidArgument or NotFound); "U" Unauthenticated; "P" PermissionDenied;
// "X" Unimplemented (the RPC is not built yet: when it is, its row must be
// decided again).
//
// Callers, every one sending x-tenant-id: default (the tenant acted on):
//   anon     no credential
//   user     a USER of the default tenant
//   admin    an ADMIN of the default tenant
//   super    the platform SUPER_ADMIN (default tenant)
//   keyWith  an API key of the default tenant holding the row's permission (every permission when it names none)
//   keyNo    an API key of the default tenant holding every permission but the row's
//   other    an ADMIN of another tenant
//
// Requests name accounts that do not exist: a caller refused gets
// PermissionDenied, not NotFound — permission comes before existence (and a
// dedicated test below shows the answer is the same for an account that exists).
// Run with PRINT_MATRIX=1 to print the observed matrix in this file's format.
import { create, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { PERMISSIONS, type Permission } from "../../src/domain/principal.ts";
import { Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const SERVICES: DescService[] = [IdentityService, SessionService, AccountService, AdminService];
const CALLERS = ["anon", "user", "admin", "super", "keyWith", "keyNo", "other"] as const;
type CallerKind = (typeof CALLERS)[number];
type Outcome = "A" | "U" | "P" | "X";

const UNKNOWN_ID = "0197a1b2-0000-7000-8000-000000000000";
const PASSWORD = "correct horse battery staple";

interface Row {
  /** The permission an API key needs (null: none lets a key in). */
  permission: Permission | null;
  /** Outcomes for anon, user, admin, super, keyWith, keyNo, other. */
  expect: string;
  /** A request that names nothing real (default: the empty request). */
  request?: Record<string, unknown>;
  /** Ends or erases the caller's own session or account: made with a throwaway caller of the same kind. */
  terminal?: true;
}

const ACCOUNT = { accountId: UNKNOWN_ID, reason: "authorization matrix" };

//                                                           anon user admin super keyWith keyNo other
const MATRIX: Record<string, Row> = {
  // IdentityService: anyone may start a flow (the flows are enumeration-safe); the caller's identities need a session.
  // SignUp with a bearer attaches the address to the caller's account: a person's session, never an API key.
  "identity.v1.IdentityService.SignUp": { permission: null, expect: "A A A A P P A" },
  "identity.v1.IdentityService.VerifyIdentity": { permission: null, expect: "A A A A A A A" },
  "identity.v1.IdentityService.ResendVerification": { permission: null, expect: "A A A A A A A" },
  "identity.v1.IdentityService.ListIdentities": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.RemoveIdentity": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.ChangePassword": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.StartPasswordReset": { permission: null, expect: "A A A A A A A" },
  "identity.v1.IdentityService.CheckPasswordResetCode": { permission: null, expect: "A A A A A A A" },
  "identity.v1.IdentityService.CompletePasswordReset": { permission: null, expect: "A A A A A A A" },
  "identity.v1.IdentityService.StartEmailChange": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.CheckEmailChangeCode": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.ConfirmEmailChange": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.AddPhone": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.VerifyPhone": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.GetIdentityProfile": { permission: null, expect: "U A A A P P A" },
  "identity.v1.IdentityService.UpdateIdentityProfile": { permission: null, expect: "U A A A P P A" },
  // SessionService: ValidateSession is open unless the session's tenant requires a key (the default tenant does not).
  "identity.v1.SessionService.SignIn": { permission: null, expect: "A A A A A A A" },
  "identity.v1.SessionService.SendSignInCode": { permission: null, expect: "A A A A A A A" },
  "identity.v1.SessionService.SignOut": { permission: null, expect: "U A A A A A A", terminal: true },
  "identity.v1.SessionService.ValidateSession": { permission: "sessions.validate", expect: "A A A A A A A" },
  "identity.v1.SessionService.ListSessions": { permission: null, expect: "U A A A P P A" },
  "identity.v1.SessionService.RevokeSession": { permission: null, expect: "U A A A P P A", request: { sessionId: UNKNOWN_ID } },
  "identity.v1.SessionService.RevokeOtherSessions": { permission: null, expect: "U A A A P P A" },
  "identity.v1.SessionService.RefreshSession": { permission: null, expect: "U A A A P P A" },
  // The revocation stream of the published validator: an API key with sessions.validate only, never a person's session.
  "identity.v1.SessionService.WatchRevocations": { permission: "sessions.validate", expect: "U P P P A P P" },
  // A signed access token of the caller's own session: a person's session only.
  "identity.v1.SessionService.IssueAccessToken": { permission: null, expect: "U A A A P P A" },
  // The challenge is the credential (SignIn's password check made it): anyone may answer one.
  "identity.v1.SessionService.CompleteSecondFactor": { permission: null, expect: "A A A A A A A" },
  "identity.v1.SessionService.SendSecondFactorCode": { permission: null, expect: "A A A A A A A" },
  "identity.v1.SessionService.StartPasskeySignIn": { permission: null, expect: "A A A A A A A" },
  // Social sign-in: anyone may start or finish one; signed in, a start links (a person's session: an API key is refused).
  "identity.v1.SessionService.StartSocialSignIn": {
    permission: null,
    expect: "A A A A P P A",
    request: { providerId: UNKNOWN_ID, redirectUri: "https://a.test/" },
  },
  "identity.v1.SessionService.CompleteSocialSignIn": { permission: null, expect: "A A A A A A A" },
  // AccountService: the caller's own account, a person's session only.
  "identity.v1.AccountService.GetAccount": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.UpdateAccount": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.AddPushToken": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.RemovePushToken": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.ListConsents": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.UpdateConsents": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.ExportAccountData": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.DeleteAccount": { permission: null, expect: "U A A A P P A", terminal: true },
  // The caller's own second factors; removing one and new recovery codes need AAL2 once a factor exists (test/integration/second-factors.test.ts).
  "identity.v1.AccountService.StartTotpEnrollment": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.ConfirmTotpEnrollment": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.StartPasskeyRegistration": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.FinishPasskeyRegistration": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.ListSecondFactors": { permission: null, expect: "U A A A P P A" },
  "identity.v1.AccountService.RemoveSecondFactor": { permission: null, expect: "U A A A P P A", request: { factorId: UNKNOWN_ID } },
  "identity.v1.AccountService.RegenerateRecoveryCodes": { permission: null, expect: "U A A A P P A" },
  // AdminService, users: ADMIN of the tenant or a key with users.read / users.write; another tenant's admin never.
  "identity.v1.AdminService.CreateUser": { permission: "users.write", expect: "U P A A A P P" },
  "identity.v1.AdminService.GetUser": { permission: "users.read", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.ListUsers": { permission: "users.read", expect: "U P A A A P P" },
  "identity.v1.AdminService.UpdateUser": {
    permission: "users.write",
    expect: "U P A A A P P",
    request: { account: { id: UNKNOWN_ID }, updateMask: { paths: ["display_name"] } },
  },
  "identity.v1.AdminService.SetUserRole": { permission: "users.write", expect: "U P A A A P P", request: { ...ACCOUNT, role: Role.USER } },
  "identity.v1.AdminService.ActivateUser": { permission: "users.write", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.DeactivateUser": { permission: "users.write", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.DeleteUser": { permission: "users.write", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.SendPasswordReset": { permission: "users.write", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.RevokeUserSessions": { permission: "users.write", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.SetSubscription": {
    permission: "subscriptions.write",
    expect: "U P A A A P P",
    request: { ...ACCOUNT, subscription: { plan: "pro" }, idempotencyKey: "matrix" },
  },
  // Customer service: a person's session (ADMIN of the tenant), never an API key.
  "identity.v1.AdminService.ChangeUserEmail": { permission: null, expect: "U P A A P P P", request: { ...ACCOUNT, newEmail: "new@example.test" } },
  "identity.v1.AdminService.IssueTemporaryPassword": { permission: null, expect: "U P A A P P P", request: ACCOUNT },
  "identity.v1.AdminService.ResetSecondFactors": { permission: null, expect: "U P A A P P P", request: ACCOUNT },
  // Plans: the tenant's admins; a billing key may read them, never change them.
  "identity.v1.AdminService.ListPlans": { permission: "subscriptions.write", expect: "U P A A A P P" },
  "identity.v1.AdminService.SetPlan": { permission: null, expect: "U P A A P P P", request: { plan: { id: "" }, reason: "authorization matrix" } },
  "identity.v1.AdminService.DeletePlan": { permission: null, expect: "U P A A P P P", request: { planId: "no-such-plan", reason: "authorization matrix" } },
  "identity.v1.AdminService.ListUserConsents": { permission: "users.read", expect: "U P A A A P P", request: ACCOUNT },
  "identity.v1.AdminService.ExportUserData": { permission: "users.read", expect: "U P A A A P P", request: ACCOUNT },
  // AdminService, audit trail: ADMIN of the tenant or a key with audit.read.
  "identity.v1.AdminService.ListAuditEvents": { permission: "audit.read", expect: "U P A A A P P" },
  "identity.v1.AdminService.VerifyAuditChain": { permission: "audit.read", expect: "U P A A A P P" },
  // AdminService, tenants and API keys: super admins only (an admin may read its own tenant); no API key.
  "identity.v1.AdminService.CreateTenant": { permission: null, expect: "U P P A P P P" },
  "identity.v1.AdminService.GetTenant": { permission: null, expect: "U P A A P P P", request: { tenantId: "default" } },
  "identity.v1.AdminService.ListTenants": { permission: null, expect: "U P P A P P P" },
  "identity.v1.AdminService.UpdateTenant": { permission: null, expect: "U P P A P P P" },
  "identity.v1.AdminService.CreateApiKey": { permission: null, expect: "U P P A P P P", request: { tenantId: "default" } },
  "identity.v1.AdminService.ListApiKeys": { permission: null, expect: "U P P A P P P", request: { tenantId: "default" } },
  "identity.v1.AdminService.RevokeApiKey": { permission: null, expect: "U P P A P P P", request: { apiKeyId: UNKNOWN_ID } },
  // AdminService, failed messages: ADMIN of the tenant or a super admin; no API key (a requeue sends mail to a person).
  "identity.v1.AdminService.ListFailedMessages": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.RequeueMessage": { permission: null, expect: "U P A A P P P", request: { messageId: UNKNOWN_ID } },
  // AdminService, social sign-in providers: ADMIN of the tenant or a super admin; no API key.
  "identity.v1.AdminService.CreateSocialProvider": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.ListSocialProviders": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.UpdateSocialProvider": {
    permission: null,
    expect: "U P A A P P P",
    request: { provider: { id: UNKNOWN_ID }, updateMask: { paths: ["name"] } },
  },
  "identity.v1.AdminService.DeleteSocialProvider": { permission: null, expect: "U P A A P P P", request: { providerId: UNKNOWN_ID } },
  // AdminService, webhooks: ADMIN of the tenant or a super admin; no API key (a webhook's secret signs what receivers trust).
  "identity.v1.AdminService.CreateWebhook": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.ListWebhooks": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.UpdateWebhook": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.DeleteWebhook": { permission: null, expect: "U P A A P P P", request: { webhookId: UNKNOWN_ID } },
  "identity.v1.AdminService.ListWebhookDeliveries": { permission: null, expect: "U P A A P P P", request: { webhookId: UNKNOWN_ID } },
  "identity.v1.AdminService.RequeueWebhookDelivery": {
    permission: null,
    expect: "U P A A P P P",
    request: { webhookId: UNKNOWN_ID, deliveryId: UNKNOWN_ID },
  },
  // AdminService, blocking hooks: ADMIN of the tenant or a super admin; no API key.
  "identity.v1.AdminService.SetBlockingHook": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.ListBlockingHooks": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.DeleteBlockingHook": { permission: null, expect: "U P A A P P P", request: { point: "before_session" } },
  // AdminService, message templates: ADMIN of the tenant or a super admin; no API key.
  "identity.v1.AdminService.SetMessageTemplate": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.GetMessageTemplate": { permission: null, expect: "U P A A P P P", request: { kind: "verify_email", locale: "en" } },
  "identity.v1.AdminService.ListMessageTemplates": { permission: null, expect: "U P A A P P P" },
  "identity.v1.AdminService.DeleteMessageTemplate": { permission: null, expect: "U P A A P P P", request: { kind: "verify_email", locale: "en" } },
  "identity.v1.AdminService.PreviewMessageTemplate": { permission: null, expect: "U P A A P P P", request: { kind: "verify_email", locale: "en" } },
  // The event stream: admins or a key with events.read (a malformed cursor ends an allowed call at once).
  "identity.v1.AdminService.StreamEvents": { permission: "events.read", expect: "U P A A A P P", request: { cursor: "not-a-cursor" } },
};

const keyOf = (method: DescMethod) => `${method.parent.typeName}.${method.name}`;
const EVERY_METHOD = SERVICES.flatMap((service) => service.methods);

function outcomeOf(code: Code | undefined): Outcome {
  if (code === Code.Unauthenticated) return "U";
  if (code === Code.PermissionDenied) return "P";
  if (code === Code.Unimplemented) return "X";
  return "A";
}

describe.each(BACKENDS)("authorization matrix on the %s backend", (backend) => {
  let server: TestServer;
  let transport: ReturnType<typeof createConnectTransport>;
  /** Bearer credentials of the long-lived callers; keys by permission set. */
  const credentials = {} as Record<Exclude<CallerKind, "keyWith" | "keyNo">, string | undefined>;
  const keys = new Map<string, string>();
  let rootToken: string;
  let otherTenant: string;

  const headersFor = (credential: string | undefined): Record<string, string> => ({
    "x-tenant-id": "default",
    ...(credential ? { authorization: `Bearer ${credential}` } : {}),
  });

  /** The code of one call (undefined when it succeeded); a server stream is read up to its first message (authorization comes before it; some never end). */
  async function codeOfCall(method: DescMethod, request: Record<string, unknown>, credential: string | undefined): Promise<Code | undefined> {
    const client = createClient(method.parent, transport) as unknown as Record<string, (input: unknown, options: unknown) => unknown>;
    const input = create(method.input as DescMessage, request as never);
    const options = { headers: headersFor(credential) };
    try {
      if (method.methodKind === "server_streaming") {
        for await (const _ of client[method.localName]!(input, options) as AsyncIterable<unknown>) {
          void _;
          break;
        }
      } else {
        await client[method.localName]!(input, options);
      }
      return undefined;
    } catch (error) {
      return ConnectError.from(error).code;
    }
  }

  // biome-ignore lint/suspicious/noExplicitAny: a row's check reads whichever response its RPC has
  async function call<I extends DescMessage>(method: DescMethod & { input: I }, request: Record<string, unknown>, credential?: string): Promise<any> {
    const client = createClient(method.parent, transport) as unknown as Record<string, (input: unknown, options: unknown) => Promise<unknown>>;
    return client[method.localName]!(create(method.input, request as never), { headers: headersFor(credential) });
  }

  let seq = 0;
  /** A new account of the kind, signed in; its session token. */
  async function person(kind: "user" | "admin" | "super" | "other"): Promise<string> {
    const email = `matrix.${kind}.${Date.now()}.${seq++}@example.test`;
    const tenantId = kind === "other" ? otherTenant : "default";
    const role = kind === "user" ? Role.USER : kind === "super" ? Role.SUPER_ADMIN : Role.ADMIN;
    const client = createClient(AdminService, transport);
    await client.createUser({ email, password: PASSWORD, role }, { headers: { authorization: `Bearer ${rootToken}`, "x-tenant-id": tenantId } });
    const res = await createClient(SessionService, transport).signIn(
      { method: { case: "emailPassword", value: { email, password: PASSWORD } } },
      { headers: { "x-tenant-id": tenantId } },
    );
    return res.sessionToken;
  }

  async function key(permissions: readonly Permission[]): Promise<string> {
    const name = [...permissions].sort().join(",");
    const known = keys.get(name);
    if (known) return known;
    const res = await call(AdminService.method.createApiKey, { tenantId: "default", name: `matrix ${name}`, permissions }, rootToken);
    keys.set(name, res.secret as string);
    return res.secret as string;
  }

  /** The credential of `caller` for `row` (a throwaway one for terminal RPCs). */
  async function credentialFor(caller: CallerKind, row: Row): Promise<string | undefined> {
    if (caller === "keyWith") return key(row.permission ? [row.permission] : PERMISSIONS);
    if (caller === "keyNo") return key(PERMISSIONS.filter((p) => p !== row.permission));
    if (caller === "anon") return undefined;
    return row.terminal ? person(caller) : credentials[caller];
  }

  beforeAll(async () => {
    server = await startTestServer(backend);
    transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" });
    const rootEmail = `matrix.root.${Date.now()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    rootToken = (await call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } })).sessionToken;
    otherTenant = (await call(AdminService.method.createTenant, { name: "Other" }, rootToken)).tenant.id as string;
    credentials.super = rootToken;
    credentials.user = await person("user");
    credentials.admin = await person("admin");
    credentials.other = await person("other");
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it("has exactly one row for every RPC of every service", () => {
    const methods = EVERY_METHOD.map(keyOf);
    expect(
      methods.filter((m) => !(m in MATRIX)),
      "RPCs without a row: decide who may call them",
    ).toEqual([]);
    expect(
      Object.keys(MATRIX).filter((m) => !methods.includes(m)),
      "rows for RPCs that do not exist",
    ).toEqual([]);
    for (const [rpc, row] of Object.entries(MATRIX)) expect(row.expect.split(" "), rpc).toHaveLength(CALLERS.length);
  });

  it("every caller gets the expected outcome from every RPC", async () => {
    const observed: Record<string, string> = {};
    // Terminal RPCs last, although they use throwaway callers.
    const methods = [...EVERY_METHOD].sort((a, b) => Number(MATRIX[keyOf(a)]?.terminal ?? false) - Number(MATRIX[keyOf(b)]?.terminal ?? false));
    for (const method of methods) {
      const row = MATRIX[keyOf(method)];
      if (!row) continue; // the test above names it
      const outcomes: Outcome[] = [];
      for (const caller of CALLERS) outcomes.push(outcomeOf(await codeOfCall(method, row.request ?? {}, await credentialFor(caller, row))));
      observed[keyOf(method)] = outcomes.join(" ");
    }
    if (process.env.PRINT_MATRIX) {
      for (const [rpc, outcome] of Object.entries(observed)) process.stdout.write(`${JSON.stringify(rpc).padEnd(56)} ${outcome}\n`);
    }
    const expected = Object.fromEntries(Object.keys(observed).map((rpc) => [rpc, MATRIX[rpc]!.expect]));
    expect(observed).toEqual(expected);
  }, 120_000);

  it("permission before existence: a refused caller gets the same answer for an account that exists as for one that does not", async () => {
    const target = (await call(AdminService.method.listUsers, {}, rootToken)).users[0].id as string;
    const accountRpcs = EVERY_METHOD.filter((m) => m.parent === AdminService && MATRIX[keyOf(m)]?.request === ACCOUNT);
    expect(accountRpcs.length).toBeGreaterThan(5);
    for (const method of accountRpcs) {
      const row = MATRIX[keyOf(method)]!;
      for (const caller of ["anon", "user", "keyNo", "other"] as const) {
        const credential = await credentialFor(caller, row);
        const unknown = await codeOfCall(method, ACCOUNT, credential);
        const existing = await codeOfCall(method, { ...ACCOUNT, accountId: target }, credential);
        expect([Code[unknown!], Code[existing!]], `${method.name} as ${caller}`).toEqual([
          caller === "anon" ? "Unauthenticated" : "PermissionDenied",
          caller === "anon" ? "Unauthenticated" : "PermissionDenied",
        ]);
      }
      // Whereas an allowed caller learns that it does not exist.
      expect(Code[(await codeOfCall(method, ACCOUNT, rootToken))!], method.name).toBe("NotFound");
    }
  });
});
