// The one ValidateSession (src/domain/validate-session.ts) on the real domain
// objects: what the gRPC fast path relies on — an answer without a promise once
// the session, its tenant and the caller's key are cached — and the tenant's
// caller rule applied alike whether or not anything is cached.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { DomainError } from "../../src/domain/errors.ts";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { validateSession } from "../../src/domain/validate-session.ts";
import { createServiceHarness, type ServiceHarness } from "./harness.ts";
import { superAdmin, verifiedPerson } from "./support.ts";

const reasonOf = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    return error instanceof DomainError ? error.reason : String(error);
  }
  throw new Error("expected a synchronous refusal");
};

describe("validateSession, the one path of both transports", () => {
  let h: ServiceHarness;
  let person: { token: string; accountId: string };
  let root: { token: string };
  beforeAll(async () => {
    h = await createServiceHarness();
    root = await superAdmin(h);
    person = await verifiedPerson(h, "validate");
  });
  afterAll(() => h?.close());

  it("answers synchronously once the session and its tenant are cached, and never reads the credential then", async () => {
    const credential = () => {
      throw new Error("the credential must not be read when the tenant does not require a key");
    };
    const first = validateSession(h.runtime.app, person.token, credential);
    expect((await first).session.accountId).toBe(person.accountId);
    const cached = validateSession(h.runtime.app, person.token, credential);
    expect(cached).not.toBeInstanceOf(Promise);
    expect((cached as Awaited<typeof cached>).session.accountId).toBe(person.accountId);
  });

  it("applies validate_requires_api_key from the cache too: a key is required, must hold sessions.validate, and then answers synchronously", async () => {
    const admin = h.client(AdminService, root.token);
    const validator = (await admin.createApiKey({ tenantId: DEFAULT_TENANT_ID, name: "validator", permissions: ["sessions.validate"] })).secret;
    const reader = (await admin.createApiKey({ tenantId: DEFAULT_TENANT_ID, name: "reader", permissions: ["users.read"] })).secret;
    await admin.updateTenant({
      tenant: { id: DEFAULT_TENANT_ID, settings: { validateRequiresApiKey: true } },
      updateMask: { paths: ["settings.validate_requires_api_key"] },
    });

    // Whatever is cached, the rule holds (the first calls may need I/O; their refusals are the same).
    await expect(Promise.resolve().then(() => validateSession(h.runtime.app, person.token, () => undefined))).rejects.toMatchObject({
      reason: "API_KEY_REQUIRED",
    });
    await expect(Promise.resolve().then(() => validateSession(h.runtime.app, person.token, () => person.token))).rejects.toMatchObject({
      reason: "API_KEY_REQUIRED",
    });
    await expect(Promise.resolve().then(() => validateSession(h.runtime.app, person.token, () => reader))).rejects.toMatchObject({
      reason: "PERMISSION_REQUIRED",
    });
    expect((await validateSession(h.runtime.app, person.token, () => validator)).session.accountId).toBe(person.accountId);

    // Now all cached: refusals are thrown and the answer returned, without a promise.
    expect(reasonOf(() => validateSession(h.runtime.app, person.token, () => undefined))).toBe("API_KEY_REQUIRED");
    expect(reasonOf(() => validateSession(h.runtime.app, person.token, () => reader))).toBe("PERMISSION_REQUIRED");
    const answer = validateSession(h.runtime.app, person.token, () => validator);
    expect(answer).not.toBeInstanceOf(Promise);
  });

  it("refuses an empty or unknown token, before any rule", async () => {
    expect(reasonOf(() => validateSession(h.runtime.app, "", () => undefined))).toBe("INVALID_ARGUMENT");
    const unknown = `${person.accountId}.${"A".repeat(43)}`;
    await expect(Promise.resolve().then(() => validateSession(h.runtime.app, unknown, () => undefined))).rejects.toMatchObject({
      kind: "unauthenticated",
      reason: "SESSION_INVALID",
    });
  });
});
