// The ApiKeyStore contract (src/domain/ports/) on every SQL backend: keys are
// found by their secret's hash, listed per tenant without it, revoked once.
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredApiKey } from "../../src/domain/ports/api-keys.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const hash = () => randomBytes(32).toString("hex");

function apiKey(tenantId: string, overrides: Partial<StoredApiKey> = {}): StoredApiKey {
  return {
    id: randomUUID(),
    tenantId,
    name: "billing service",
    permissions: ["sessions.validate", "users.read"],
    createdAt: T0,
    revokedAt: null,
    createdBy: "account:x",
    ...overrides,
  };
}

describe.each(BACKENDS)("ApiKeyStore contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("create() stores the key under its secret hash; findBySecretHash() and get() return it as stored", async () => {
    const key = apiKey("t-find");
    const secretHash = hash();
    await h.stores.apiKeys.create(key, secretHash);
    expect(await h.stores.apiKeys.findBySecretHash(secretHash)).toEqual(key);
    expect(await h.stores.apiKeys.get(key.id)).toEqual(key);
    expect(await h.stores.apiKeys.findBySecretHash(hash())).toBeUndefined();
    expect(await h.stores.apiKeys.get(randomUUID())).toBeUndefined();
    const row = await h.raw.selectFrom("api_keys").selectAll().where("id", "=", key.id).executeTakeFirstOrThrow();
    expect(row.secret_hash).toBe(secretHash);
    expect(row.permissions).toBe("sessions.validate,users.read");
  });

  it("a secret hash is unique: a second key with it is refused and nothing is written", async () => {
    const secretHash = hash();
    await h.stores.apiKeys.create(apiKey("t-unique"), secretHash);
    const second = apiKey("t-unique");
    await expect(h.stores.apiKeys.create(second, secretHash)).rejects.toThrow();
    expect(await h.stores.apiKeys.get(second.id)).toBeUndefined();
  });

  it("list() gives one tenant's keys oldest first, revoked ones included, up to the limit", async () => {
    const a1 = apiKey("t-list-a", { createdAt: T0 + 2, name: "second" });
    const a0 = apiKey("t-list-a", { createdAt: T0 + 1, name: "first", revokedAt: T0 + 5 });
    const b = apiKey("t-list-b");
    for (const key of [a1, a0, b]) await h.stores.apiKeys.create(key, hash());
    expect(await h.stores.apiKeys.list("t-list-a", 10)).toEqual([a0, a1]);
    expect(await h.stores.apiKeys.list("t-list-a", 1)).toEqual([a0]);
    expect(await h.stores.apiKeys.list("t-list-none", 10)).toEqual([]);
  });

  it("revoke() sets the time once and returns the key with its secret hash; unknown → undefined", async () => {
    const key = apiKey("t-revoke");
    const secretHash = hash();
    await h.stores.apiKeys.create(key, secretHash);
    expect(await h.stores.apiKeys.revoke(key.id, T0 + 10)).toEqual({ key: { ...key, revokedAt: T0 + 10 }, secretHash });
    expect(await h.stores.apiKeys.revoke(key.id, T0 + 20)).toEqual({ key: { ...key, revokedAt: T0 + 10 }, secretHash });
    expect((await h.stores.apiKeys.findBySecretHash(secretHash))?.revokedAt).toBe(T0 + 10);
    expect(await h.stores.apiKeys.revoke(randomUUID(), T0)).toBeUndefined();
  });

  it("keeps times beyond 2^32 ms exactly", async () => {
    const key = apiKey("t-time", { createdAt: 2 ** 41 + 123 });
    await h.stores.apiKeys.create(key, hash());
    expect((await h.stores.apiKeys.get(key.id))?.createdAt).toBe(2 ** 41 + 123);
  });
});
