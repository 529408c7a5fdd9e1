// Bad input through the handlers, in memory: InvalidArgument naming the
// request field, and only once the caller was authenticated where the RPC
// needs a caller.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { createServiceHarness, type ServiceHarness } from "./harness.ts";
import { expectRefused, PASSWORD, superAdmin, uniqueEmail, verifiedPerson } from "./support.ts";

describe("field validation through the handlers, in memory", () => {
  let h: ServiceHarness;
  let root: { token: string };
  let person: { token: string };
  beforeAll(async () => {
    h = await createServiceHarness();
    root = await superAdmin(h);
    person = await verifiedPerson(h, "fields");
  });
  afterAll(() => h?.close());

  async function expectField(call: Promise<unknown>, field: string) {
    const error = await expectRefused(call, Code.InvalidArgument);
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual([field]);
  }

  it("names the field of an anonymous RPC's bad input", async () => {
    await expectField(h.client(IdentityService).signUp({ email: "not an address", password: PASSWORD }), "email");
    await expectField(h.client(IdentityService).signUp({ email: uniqueEmail("weak"), password: "password1234" }), "password");
    await expectField(
      h.client(IdentityService, undefined, { "x-tenant-id": "bad tenant!" }).signUp({ email: uniqueEmail("tenant"), password: PASSWORD }),
      "x-tenant-id",
    );
    await expectField(h.client(SessionService).signIn({}), "method");
    await expectField(
      h
        .client(SessionService)
        .signIn({ method: { case: "emailPassword", value: { email: uniqueEmail("mask"), password: PASSWORD } }, profileMask: { paths: ["password_hash"] } }),
      "profile_mask",
    );
    await expectField(h.client(SessionService).validateSession({ sessionToken: "" }), "session_token");
  });

  it("authenticates before it validates: the same bad input without a credential is Unauthenticated", async () => {
    await expectRefused(h.client(SessionService).revokeSession({ sessionId: "" }), Code.Unauthenticated, "SESSION_REQUIRED");
    await expectField(h.client(SessionService, person.token).revokeSession({ sessionId: "" }), "session_id");
    await expectRefused(h.client(AdminService).updateTenant({ tenant: { id: DEFAULT_TENANT_ID } }), Code.Unauthenticated, "AUTHENTICATION_REQUIRED");
    await expectField(h.client(AdminService, root.token).updateTenant({ tenant: { id: DEFAULT_TENANT_ID } }), "update_mask");
  });

  it("names the field of an admin RPC's bad time or tenant", async () => {
    await expectField(h.client(AdminService, root.token).listAuditEvents({ after: { seconds: 1n, nanos: 2_000_000_000 } }), "after");
    await expectField(h.client(AdminService, root.token).listUsers({ reason: "audit", createdBefore: { seconds: -5n, nanos: 0 } }), "created_before");
    await expectField(h.client(AdminService, root.token).listApiKeys({ tenantId: "no such tenant!" }), "tenant_id");
  });
});
