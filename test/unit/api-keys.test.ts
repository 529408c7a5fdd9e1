// Service API keys in the domain (src/domain/api-keys.ts): secret shape, input
// checks, the short lookup cache and revocation reaching every instance at once.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashSecret } from "../../src/crypto/keyring.ts";
import { createApiKeys, isApiKeySecret, type ApiKeys } from "../../src/domain/api-keys.ts";
import type { ApiKeyStore } from "../../src/domain/ports/api-keys.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";

let clock = Date.UTC(2030, 0, 1);
const now = () => clock;
let database: SqlDatabase;
let store: ApiKeyStore;
let ephemeral: EphemeralStores;
let lookups: number;

async function instance(cacheMs = 5_000, over: ApiKeyStore = store): Promise<ApiKeys> {
  // Counts what reaches the database, to see what the cache answers.
  const counting: ApiKeyStore = { ...over, findBySecretHash: (hash) => (lookups++, over.findBySecretHash(hash)) };
  const keys = createApiKeys({ store: counting, invalidation: ephemeral.invalidation, now, cache: { maxAgeMs: cacheMs } });
  await keys.listen();
  return keys;
}

beforeEach(async () => {
  database = openSqlDatabase({ sqlitePath: ":memory:" });
  await migrateToLatest(database.db);
  store = createSqlStores(database, openSqlDatabase({ sqlitePath: ":memory:" })).apiKeys; // the key store is not used here
  ephemeral = createMemoryStores({ now });
  lookups = 0;
});
afterEach(async () => {
  await ephemeral.close();
  await database.close();
});

const input = { tenantId: "default", name: "billing", permissions: ["sessions.validate", "users.read"], createdBy: "system" };

describe("API keys", () => {
  it("have a recognisable 256-bit secret, stored only as its hash, and authenticate to their tenant and permissions", async () => {
    const keys = await instance();
    const { key, secret } = await keys.create(input);
    expect(secret).toMatch(/^idk_[A-Za-z0-9_-]{43}$/);
    expect(isApiKeySecret(secret)).toBe(true);
    expect(isApiKeySecret(`${key.id}.${"x".repeat(43)}`)).toBe(false);
    const rows = await database.db.selectFrom("api_keys").selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.secret_hash).toBe(hashSecret(secret));
    expect(JSON.stringify(rows)).not.toContain(secret.slice(4));
    expect(await keys.authenticate(secret)).toEqual({
      kind: "api_key",
      tenantId: "default",
      apiKeyId: key.id,
      permissions: ["sessions.validate", "users.read"],
    });
  });

  it("refuses unknown and malformed secrets as unauthenticated, without a lookup for a malformed one", async () => {
    const keys = await instance();
    const unauthenticated = expect.objectContaining({ kind: "unauthenticated", reason: "API_KEY_INVALID" });
    await expect(keys.authenticate("idk_short")).rejects.toThrow(unauthenticated);
    expect(lookups).toBe(0);
    await expect(keys.authenticate(`idk_${"A".repeat(43)}`)).rejects.toThrow(unauthenticated);
    expect(lookups).toBe(1);
  });

  it.each([
    ["an empty name", { name: "" }, "name"],
    ["a 201-character name", { name: "x".repeat(201) }, "name"],
    ["a name with a control character", { name: "a\u0000b" }, "name"],
    ["no permissions", { permissions: [] }, "permissions"],
    ["an unknown permission", { permissions: ["users.admin"] }, "permissions[0]"],
    ["a repeated permission", { permissions: ["users.read", "users.read"] }, "permissions[1]"],
  ])("refuses %s, naming the field", async (_, change, field) => {
    await expect((await instance()).create({ ...input, ...change })).rejects.toThrow(
      expect.objectContaining({ kind: "invalid_argument", fieldViolations: [expect.objectContaining({ field })] }),
    );
  });

  it("caches lookups for a few seconds at most", async () => {
    const keys = await instance(5_000);
    const { secret } = await keys.create(input);
    expect(keys.authenticateCached(secret)).toBeUndefined();
    await keys.authenticate(secret);
    await keys.authenticate(secret);
    expect(lookups).toBe(1);
    expect(keys.authenticateCached(secret)?.kind).toBe("api_key");
    clock += 5_000;
    expect(keys.authenticateCached(secret)).toBeUndefined();
    await keys.authenticate(secret);
    expect(lookups).toBe(2);
  });

  it("a revocation is refused at once by every instance sharing the invalidation bus", async () => {
    const here = await instance();
    const there = await instance();
    const { key, secret } = await here.create(input);
    await here.authenticate(secret);
    await there.authenticate(secret);
    expect(there.authenticateCached(secret)).toBeDefined();

    const revoked = await here.revoke(key.id);
    expect(revoked.revokedAt).toBe(clock);
    expect(there.authenticateCached(secret)).toBeUndefined();
    await expect(here.authenticate(secret)).rejects.toThrow(expect.objectContaining({ reason: "API_KEY_INVALID" }));
    await expect(there.authenticate(secret)).rejects.toThrow(expect.objectContaining({ reason: "API_KEY_INVALID" }));

    clock += 1000;
    expect((await here.revoke(key.id)).revokedAt).toBe(clock - 1000); // idempotent, keeps the first time
    await expect(here.revoke("0197a1b2-0000-7000-8000-000000000000")).rejects.toThrow(expect.objectContaining({ kind: "not_found" }));
  });

  it("a lookup that overlapped a revocation is not cached", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: ApiKeyStore = {
      ...store,
      findBySecretHash: async (hash) => {
        const found = await store.findBySecretHash(hash);
        await gate;
        return found;
      },
    };
    const keys = await instance(5_000, slow);
    const { key, secret } = await (await instance()).create(input);
    const pending = keys.authenticate(secret); // reads the live key…
    await new Promise((r) => setTimeout(r, 10));
    await (await instance()).revoke(key.id); // …while another instance revokes it
    release();
    await pending; // the overlapping answer itself may be the old one
    await expect(keys.authenticate(secret)).rejects.toThrow(expect.objectContaining({ reason: "API_KEY_INVALID" }));
  });

  it("lists a tenant's keys without secrets or hashes, revoked ones included", async () => {
    const keys = await instance();
    const first = await keys.create(input);
    clock += 1;
    await keys.create({ ...input, name: "second" });
    await keys.create({ ...input, tenantId: "other" });
    await keys.revoke(first.key.id);
    const listed = await keys.list("default");
    expect(listed.map((k) => k.name)).toEqual(["billing", "second"]);
    expect(listed[0]!.revokedAt).not.toBeNull();
    expect(JSON.stringify(listed)).not.toContain(hashSecret(first.secret));
  });
});
