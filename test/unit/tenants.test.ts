// Tenants in the domain (src/domain/tenants.ts): settings rules, creation,
// paging, updates and the settings cache being dropped on update here and on
// every other instance sharing the invalidation bus.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";
import { backendUnavailable } from "../../src/domain/ports/errors.ts";
import type { InvalidationBus, InvalidationSubscriber } from "../../src/domain/ports/invalidation.ts";
import type { TenantStore } from "../../src/domain/ports/tenants.ts";
import { createTenants, DEFAULT_TENANT_SETTINGS, tenantSettingsViolations, type Tenants } from "../../src/domain/tenants.ts";
import type { TenantSettings } from "../../src/domain/types.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";

const HOUR = 3_600_000;
let clock = Date.UTC(2030, 0, 1);
const now = () => clock;
let database: SqlDatabase;
let store: TenantStore;
let ephemeral: EphemeralStores;

async function instance(): Promise<Tenants> {
  const tenants = createTenants(store, now, ephemeral.invalidation);
  await tenants.listen();
  return tenants;
}

beforeEach(async () => {
  database = openSqlDatabase({ sqlitePath: ":memory:" });
  await migrateToLatest(database.db);
  store = createSqlStores(database, openSqlDatabase({ sqlitePath: ":memory:" })).tenants; // the key store is not used here
  ephemeral = createMemoryStores({ now });
});
afterEach(async () => {
  await ephemeral.close();
  await database.close();
});

describe("tenant settings rules", () => {
  const fields = (change: Partial<TenantSettings>) => tenantSettingsViolations({ ...DEFAULT_TENANT_SETTINGS, ...change }, "settings.").map((v) => v.field);

  it("accepts the defaults and sensible values", () => {
    expect(fields({})).toEqual([]);
    expect(fields({ passwordMinLength: 8, linkBaseUrl: "https://shop.example.com/account", defaultLocale: "fr", signInPerIpLimit: 1 })).toEqual([]);
    expect(fields({ passwordMinLength: 64, sessionIdleTimeoutMs: HOUR, sessionAbsoluteLifetimeMs: HOUR, linkBaseUrl: "http://localhost:3000" })).toEqual([]);
  });

  it.each<[string, Partial<TenantSettings>, string]>([
    ["a password minimum below 8", { passwordMinLength: 7 }, "settings.password_min_length"],
    ["a password minimum above 64", { passwordMinLength: 65 }, "settings.password_min_length"],
    ["a zero idle timeout", { sessionIdleTimeoutMs: 0 }, "settings.session_idle_timeout"],
    ["a negative absolute lifetime", { sessionAbsoluteLifetimeMs: -1, sessionIdleTimeoutMs: -2 }, "settings.session_absolute_lifetime"],
    ["an idle timeout above the absolute lifetime", { sessionIdleTimeoutMs: 2 * HOUR, sessionAbsoluteLifetimeMs: HOUR }, "settings.session_idle_timeout"],
    ["a missing duration", { unverifiedRetentionMs: Number.NaN }, "settings.unverified_retention"],
    ["a lifetime over a year", { sessionAbsoluteLifetimeMs: 400 * 24 * HOUR }, "settings.session_absolute_lifetime"],
    ["a zero rate limit", { signInPerIpLimit: 0 }, "settings.sign_in_per_ip_limit"],
    ["a zero account limit", { signInPerAccountLimit: 0 }, "settings.sign_in_per_account_limit"],
    ["a fractional limit", { messagesPerAddressLimit: 1.5 }, "settings.messages_per_address_limit"],
    ["a link base that is not http(s)", { linkBaseUrl: "javascript:alert(1)" }, "settings.link_base_url"],
    ["a link base that is no URL", { linkBaseUrl: "shop.example.com" }, "settings.link_base_url"],
    ["a link base with credentials", { linkBaseUrl: "https://u:p@shop.example.com" }, "settings.link_base_url"],
    ["an unsupported locale", { defaultLocale: "it" as "en" }, "settings.default_locale"],
  ])("refuses %s", (_, change, field) => {
    expect(fields(change)).toContain(field);
  });

  it("names every broken rule at once", () => {
    expect(fields({ passwordMinLength: 4, signInPerIpLimit: 0, defaultLocale: "xx" as "en" })).toEqual([
      "settings.password_min_length",
      "settings.sign_in_per_ip_limit",
      "settings.default_locale",
    ]);
  });
});

describe("tenants", () => {
  it("creates a tenant with a new id, refusing a bad name or settings with every field named", async () => {
    const tenants = await instance();
    const created = await tenants.create({ name: "  Shop  ", settings: { ...DEFAULT_TENANT_SETTINGS, inviteOnly: true } });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.name).toBe("Shop");
    expect(await tenants.get(created.id)).toEqual(created);
    await expect(tenants.create({ name: "", settings: { ...DEFAULT_TENANT_SETTINGS, passwordMinLength: 3 } })).rejects.toThrow(
      expect.objectContaining({
        kind: "invalid_argument",
        fieldViolations: [expect.objectContaining({ field: "name" }), expect.objectContaining({ field: "settings.password_min_length" })],
      }),
    );
  });

  it("pages through every tenant exactly once with opaque tokens", async () => {
    const tenants = await instance();
    await tenants.ensureDefault(clock);
    for (let i = 0; i < 7; i++) await tenants.create({ name: `T${i}`, settings: DEFAULT_TENANT_SETTINGS });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await tenants.list({ pageSize: 3, pageToken });
      expect(page.tenants.length).toBeLessThanOrEqual(3);
      seen.push(...page.tenants.map((t) => t.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);
    expect((await tenants.list({ pageSize: 0, pageToken: "" })).tenants).toHaveLength(8);
    await expect(tenants.list({ pageSize: 501, pageToken: "" })).rejects.toThrow(
      expect.objectContaining({ fieldViolations: [expect.objectContaining({ field: "page_size" })] }),
    );
    await expect(tenants.list({ pageSize: 10, pageToken: "bm9wZQ" })).rejects.toThrow(expect.objectContaining({ reason: "INVALID_PAGE_TOKEN" }));
  });

  it("an update is seen at once here and on another instance, though both had the tenant cached", async () => {
    const here = await instance();
    const there = await instance();
    const { id } = await here.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    await here.get(id);
    await there.get(id);
    expect(there.getCached(id)?.settings.validateRequiresApiKey).toBe(false);

    await here.update(id, (t) => ({ name: t.name, settings: { ...t.settings, validateRequiresApiKey: true } }));
    expect(here.getCached(id)).toBeUndefined();
    expect(there.getCached(id)).toBeUndefined();
    expect((await there.get(id)).settings.validateRequiresApiKey).toBe(true);
  });

  it("an update is checked, names fields under its prefix and writes nothing when refused", async () => {
    const tenants = await instance();
    const { id } = await tenants.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    await expect(tenants.update(id, (t) => ({ name: t.name, settings: { ...t.settings, sessionIdleTimeoutMs: 0 } }), "tenant.")).rejects.toThrow(
      expect.objectContaining({ fieldViolations: [expect.objectContaining({ field: "tenant.settings.session_idle_timeout" })] }),
    );
    expect((await store.get(id))?.settings.sessionIdleTimeoutMs).toBe(DEFAULT_TENANT_SETTINGS.sessionIdleTimeoutMs);
    await expect(tenants.update("0197a1b2-0000-7000-8000-000000000000", (t) => t)).rejects.toThrow(expect.objectContaining({ kind: "not_found" }));
  });

  it("without an invalidation bus, a cached tenant is still re-read after 10 seconds", async () => {
    const writer = createTenants(store, now);
    const reader = createTenants(store, now);
    const { id } = await writer.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    await reader.get(id);
    await writer.update(id, (t) => ({ name: "Renamed", settings: t.settings }));
    expect((await reader.get(id)).name).toBe("Shop");
    clock += 10_000;
    expect((await reader.get(id)).name).toBe("Renamed");
  });
});

describe("tenant settings while the database is down", () => {
  /** The tenant store behind a switch: while down, every read fails as a dropped connection would. */
  function faulty() {
    const state = { down: false, reads: 0 };
    const wrapped: TenantStore = {
      ...store,
      get: async (id) => {
        state.reads++;
        if (state.down) throw backendUnavailable(new Error("connect ETIMEDOUT")); // what the adapters throw
        return store.get(id);
      },
    };
    return { state, tenants: createTenants(wrapped, now, ephemeral.invalidation) };
  }

  it("the last known settings keep answering, without waiting for the database, and are re-read in the background", async () => {
    const writer = await instance();
    const { state, tenants } = faulty();
    await tenants.listen();
    const { id } = await writer.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    expect((await tenants.get(id)).name).toBe("Shop");

    state.down = true;
    clock += 10_000; // the cached copy is due for a re-read
    expect((await tenants.get(id)).name).toBe("Shop");
    const reads = state.reads;
    expect(tenants.getCached(id)?.name).toBe("Shop"); // no I/O: the hot path stays synchronous
    expect((await tenants.get(id)).name).toBe("Shop");
    expect(state.reads).toBe(reads); // a failing database is not asked again at once

    await store.update(id, (t) => ({ name: "Renamed", settings: t.settings })); // written while this instance could not read
    state.down = false;
    clock += 1000;
    expect(tenants.getCached(id)?.name).toBe("Shop"); // answered at once, re-read in the background
    await vi.waitFor(() => expect(tenants.getCached(id)?.name).toBe("Renamed"));
    expect(state.reads).toBe(reads + 1);
  });

  it("also while the invalidation subscription is down (which empties the cache), but not after the tenant changed elsewhere", async () => {
    const subscribers: InvalidationSubscriber[] = [];
    const bus: InvalidationBus = { publish: async () => {}, subscribe: async (x) => void subscribers.push(x) };
    const state = { down: false };
    const wrapped: TenantStore = { ...store, get: async (id) => (state.down ? Promise.reject(backendUnavailable(new Error("ECONNRESET"))) : store.get(id)) };
    const tenants = createTenants(wrapped, now, bus);
    await tenants.listen();
    const { id } = await tenants.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    await tenants.get(id);
    subscribers.forEach((x) => x.subscribed(false));
    state.down = true;
    expect((await tenants.get(id)).name).toBe("Shop");

    subscribers.forEach((x) => x.invalidate([{ kind: "tenant", tenantId: id }]));
    await expect(tenants.get(id)).rejects.toThrow(expect.objectContaining({ kind: "unavailable" }));
  });

  it("not forever: after 10 minutes without a successful read the outage is reported", async () => {
    const { state, tenants } = faulty();
    const { id } = await tenants.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    await tenants.get(id);
    state.down = true;
    clock += 10_000;
    expect((await tenants.get(id)).name).toBe("Shop");
    clock += 10 * 60_000 + 1;
    await expect(tenants.get(id)).rejects.toThrow(expect.objectContaining({ kind: "unavailable" }));
    expect(tenants.getCached(id)).toBeUndefined();
  });

  it("a tenant never read is not invented, and not_found stays not_found", async () => {
    const { state, tenants } = faulty();
    const { id } = await tenants.create({ name: "Shop", settings: DEFAULT_TENANT_SETTINGS });
    await expect(tenants.get("0197a1b2-0000-7000-8000-000000000000")).rejects.toThrow(expect.objectContaining({ kind: "not_found" }));
    state.down = true;
    await expect(tenants.get(id)).rejects.toThrow(expect.objectContaining({ kind: "unavailable" }));
  });
});
