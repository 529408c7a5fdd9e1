// Who may call what, decided by the authentication interceptor and the RPC's
// rule, in memory: refusals keep their codes and reasons, and a caller who may
// not make a call learns nothing about whether its target exists.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { createServiceHarness, type ServiceHarness } from "./harness.ts";
import { expectRefused, superAdmin, verifiedPerson } from "./support.ts";

describe("authorization through the interceptor, in memory", () => {
  let h: ServiceHarness;
  let root: { token: string; accountId: string };
  let person: { token: string; accountId: string; email: string };
  let readerKey = "";
  let validatorKey = "";

  beforeAll(async () => {
    h = await createServiceHarness();
    root = await superAdmin(h);
    person = await verifiedPerson(h, "person");
    const admin = h.client(AdminService, root.token);
    readerKey = (await admin.createApiKey({ tenantId: DEFAULT_TENANT_ID, name: "reader", permissions: ["users.read"] })).secret;
    validatorKey = (await admin.createApiKey({ tenantId: DEFAULT_TENANT_ID, name: "validator", permissions: ["sessions.validate"] })).secret;
  });
  afterAll(() => h?.close());

  it("refuses a person's RPC without a session, with a malformed header, or with an API key", async () => {
    await expectRefused(h.client(AccountService).getAccount({}), Code.Unauthenticated, "SESSION_REQUIRED");
    await expectRefused(
      h.client(AccountService, undefined, { authorization: "Basic dXNlcjpwYXNz" }).getAccount({}),
      Code.Unauthenticated,
      "MALFORMED_AUTHORIZATION",
    );
    await expectRefused(h.client(AccountService, `${person.accountId}.not-a-real-secret`).getAccount({}), Code.Unauthenticated, "SESSION_INVALID");
    await expectRefused(h.client(AccountService, readerKey).getAccount({}), Code.PermissionDenied, "SESSION_REQUIRED");
    await expectRefused(h.client(AccountService, "idk_unknown-key-secret").getAccount({}), Code.Unauthenticated, "API_KEY_INVALID");
  });

  it("refuses an admin RPC without a credential, to a USER, and to a key lacking the permission", async () => {
    await expectRefused(h.client(AdminService).listUsers({ reason: "audit" }), Code.Unauthenticated, "AUTHENTICATION_REQUIRED");
    await expectRefused(h.client(AdminService, person.token).listUsers({ reason: "audit" }), Code.PermissionDenied, "ROLE_REQUIRED");
    await expectRefused(h.client(AdminService, validatorKey).listUsers({ reason: "audit" }), Code.PermissionDenied, "PERMISSION_REQUIRED");
    await expectRefused(h.client(AdminService, readerKey).createTenant({ name: "Nope" }), Code.PermissionDenied, "API_KEY_NOT_ALLOWED");
    const { users } = await h.client(AdminService, readerKey).listUsers({ reason: "support ticket 42" });
    expect(users.map((u) => u.id)).toContain(person.accountId);
  });

  it("checks permission before existence: a USER learns nothing about an account id", async () => {
    const real = await expectRefused(
      h.client(AdminService, person.token).getUser({ accountId: root.accountId, reason: "curious" }),
      Code.PermissionDenied,
      "ROLE_REQUIRED",
    );
    const made_up = await expectRefused(
      h.client(AdminService, person.token).getUser({ accountId: "01890000-0000-7000-8000-000000000000", reason: "curious" }),
      Code.PermissionDenied,
      "ROLE_REQUIRED",
    );
    expect(made_up.rawMessage).toBe(real.rawMessage);
  });

  it("confines a key to its tenant, while a super admin names another tenant", async () => {
    const { tenant } = await h.client(AdminService, root.token).createTenant({ name: "Other" });
    const other = { "x-tenant-id": tenant!.id };
    await expectRefused(h.client(AdminService, readerKey, other).listUsers({ reason: "audit" }), Code.PermissionDenied, "OTHER_TENANT");
    const { users } = await h.client(AdminService, root.token, other).listUsers({ reason: "audit" });
    expect(users).toEqual([]);
  });

  it("applies a tenant's validate_requires_api_key on ValidateSession: no key, a session token, a key without the permission", async () => {
    const validate = (bearer?: string) => h.client(SessionService, bearer).validateSession({ sessionToken: person.token });
    expect((await validate()).accountId).toBe(person.accountId);
    await h.client(AdminService, root.token).updateTenant({
      tenant: { id: DEFAULT_TENANT_ID, settings: { validateRequiresApiKey: true } },
      updateMask: { paths: ["settings.validate_requires_api_key"] },
    });
    await expectRefused(validate(), Code.Unauthenticated, "API_KEY_REQUIRED");
    await expectRefused(validate(person.token), Code.Unauthenticated, "API_KEY_REQUIRED");
    await expectRefused(validate(readerKey), Code.PermissionDenied, "PERMISSION_REQUIRED");
    expect((await validate(validatorKey)).accountId).toBe(person.accountId);
  });
});
