// The SocialProviderStore contract (src/domain/ports/social-providers.ts) on
// every SQL backend: providers stored and read back as they were, per tenant
// (another tenant's id is unknown), listed oldest first, updated only by a
// compare-and-set on their update time, deleted once.
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { systemRandom } from "../../src/crypto/random.ts";
import { rotateSocialProviderKeys } from "../../src/domain/key-rotation.ts";
import type { StoredSocialProvider } from "../../src/domain/ports/social-providers.ts";
import { createSocialProviders } from "../../src/domain/social-providers.ts";
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

  it("listKeys() pages every tenant's wrapped keys by id; replaceKey() is a compare-and-set", async () => {
    const p = provider("t-keys", { wrappedKey: "old-wrapping" });
    await h.stores.socialProviders.create(p);
    const all: string[] = [];
    for (let afterId = ""; ; ) {
      const page = await h.stores.socialProviders.listKeys({ afterId, limit: 2 });
      all.push(...page.map((k) => k.id));
      if (page.length < 2) break;
      afterId = page.at(-1)!.id;
    }
    expect(all).toEqual([...all].sort());
    expect(all).toContain(p.id);
    expect(await h.stores.socialProviders.replaceKey({ id: p.id, expected: "not-it", wrappedKey: "x" })).toBe(false);
    expect(await h.stores.socialProviders.replaceKey({ id: p.id, expected: "old-wrapping", wrappedKey: "new-wrapping" })).toBe(true);
    expect((await h.stores.socialProviders.get("t-keys", p.id))?.wrappedKey).toBe("new-wrapping");
  });

  it("a KEK rotation rewraps the providers' keys: their secrets open under the new KEK alone", async () => {
    const k1 = { id: "k1", key: randomBytes(32) };
    const k2 = { id: "k2", key: randomBytes(32) };
    const blind = randomBytes(32);
    const before = createSocialProviders({
      store: h.stores.socialProviders,
      keyring: createKeyring([k1], blind),
      now: () => T0,
      random: systemRandom,
      allowHttpLoopback: false,
    });
    const created = await before.create(
      "t-rotate",
      { kind: 1, name: "G", issuer: "", clientId: "c", scopes: [], redirectUris: ["https://app.example.test/cb"], appleTeamId: "", appleKeyId: "" },
      { clientSecret: "the-client-secret", applePrivateKey: "" },
    );
    const result = await rotateSocialProviderKeys({ providers: h.stores.socialProviders, keyring: createKeyring([k2, k1], blind) });
    expect(result.rewrapped).toBeGreaterThanOrEqual(1);
    // The other tests' rows hold made-up wrappings: unreadable, left as they are, and counted as still stale.
    expect(result.failed).not.toContain(created.id);
    expect(result.stale).toBe(result.failed.length);
    expect((await h.stores.socialProviders.get("t-rotate", created.id))?.wrappedKey.startsWith("k2.")).toBe(true);
    const after = createSocialProviders({
      store: h.stores.socialProviders,
      keyring: createKeyring([k2], blind),
      now: () => T0,
      random: systemRandom,
      allowHttpLoopback: false,
    });
    expect((await after.open("t-rotate", created.id)).clientSecret).toBe("the-client-secret");
  });
});
