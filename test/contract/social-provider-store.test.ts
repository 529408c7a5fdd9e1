// The SocialProviderStore contract (src/domain/ports/social-providers.ts) on
// every SQL backend: providers stored and read back as they were, per tenant
// (another tenant's id is unknown), listed oldest first, updated only by a
// compare-and-set on their update time, deleted once.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredSocialProvider } from "../../src/domain/ports/social-providers.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);

function provider(tenantId: string, overrides: Partial<StoredSocialProvider> = {}): StoredSocialProvider {
  return {
    id: randomUUID(),
    tenantId,
    kind: 1,
    name: "Google",
    issuer: "https://accounts.google.com",
    clientId: "1234.apps.googleusercontent.com",
    scopes: ["openid", "email", "profile"],
    redirectUris: ["https://app.example.test/a", "https://app.example.test/b"],
    appleTeamId: "",
    appleKeyId: "",
    wrappedKey: "wrapped-key",
    secretsSealed: "sealed-secrets",
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

describe.each(BACKENDS)("SocialProviderStore contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("create() then get() returns the provider as stored, only in its tenant", async () => {
    const p = provider("t-get", { kind: 2, appleTeamId: "ABCDE12345", appleKeyId: "KEY1234567" });
    await h.stores.socialProviders.create(p);
    expect(await h.stores.socialProviders.get("t-get", p.id)).toEqual(p);
    expect(await h.stores.socialProviders.get("t-other", p.id)).toBeUndefined();
    expect(await h.stores.socialProviders.get("t-get", randomUUID())).toBeUndefined();
  });

  it("list() gives the tenant's providers oldest first, up to the limit", async () => {
    const [a, b, c] = [provider("t-list", { createdAt: T0 + 2 }), provider("t-list", { createdAt: T0 }), provider("t-list", { createdAt: T0 + 1 })];
    for (const p of [a!, b!, c!]) await h.stores.socialProviders.create(p);
    await h.stores.socialProviders.create(provider("t-list-other"));
    expect((await h.stores.socialProviders.list("t-list", 10)).map((p) => p.id)).toEqual([b!.id, c!.id, a!.id]);
    expect(await h.stores.socialProviders.list("t-list", 2)).toHaveLength(2);
  });

  it("update() is a compare-and-set on the update time: a stale writer changes nothing", async () => {
    const p = provider("t-update");
    await h.stores.socialProviders.create(p);
    const first = { ...p, name: "first", redirectUris: ["https://app.example.test/c"], secretsSealed: "sealed-2", updatedAt: T0 + 1 };
    expect(await h.stores.socialProviders.update(first, T0)).toBe(true);
    expect(await h.stores.socialProviders.update({ ...p, name: "stale", updatedAt: T0 + 2 }, T0)).toBe(false);
    expect(await h.stores.socialProviders.get("t-update", p.id)).toEqual(first);
    expect(await h.stores.socialProviders.update({ ...first, tenantId: "t-other", updatedAt: T0 + 3 }, T0 + 1)).toBe(false);
  });

  it("delete() removes it once, only in its tenant", async () => {
    const p = provider("t-delete");
    await h.stores.socialProviders.create(p);
    expect(await h.stores.socialProviders.delete("t-other", p.id)).toBe(false);
    expect(await h.stores.socialProviders.delete("t-delete", p.id)).toBe(true);
    expect(await h.stores.socialProviders.delete("t-delete", p.id)).toBe(false);
    expect(await h.stores.socialProviders.get("t-delete", p.id)).toBeUndefined();
  });
});
