// Tenants (applications): every record belongs to one. A default tenant is
// created on first start; settings are read through a short cache because
// every RPC needs them.
import type { TenantStore } from "./ports.ts";
import type { Tenant, TenantSettings } from "./types.ts";
import { DomainError } from "./errors.ts";

export const DEFAULT_TENANT_ID = "default";

const HOUR = 3_600_000;

export const DEFAULT_TENANT_SETTINGS: TenantSettings = Object.freeze({
  inviteOnly: false,
  manualActivation: false,
  passwordMinLength: 12,
  sessionIdleTimeoutMs: 24 * HOUR,
  sessionAbsoluteLifetimeMs: 30 * 24 * HOUR,
  linkBaseUrl: "",
  defaultLocale: "en",
  validateRequiresApiKey: false,
  signInPerIpLimit: 100,
  signInPerAccountLimit: 10,
  signUpPerIpLimit: 100,
  codeAttemptsPerIpLimit: 60,
  codeAttemptsPerAccountLimit: 10,
  messagesPerAddressLimit: 5,
  unverifiedRetentionMs: 7 * 24 * HOUR,
});

export interface Tenants {
  /** The tenant's settings; not_found when the tenant does not exist. */
  get(id: string): Promise<Tenant>;
  ensureDefault(now: number): Promise<void>;
}

const CACHE_MS = 10_000;

export function createTenants(store: TenantStore, now: () => number): Tenants {
  const cache = new Map<string, { tenant: Tenant; at: number }>();
  return {
    async get(id) {
      const hit = cache.get(id);
      if (hit && now() - hit.at < CACHE_MS) return hit.tenant;
      const tenant = await store.get(id);
      if (!tenant) throw new DomainError("not_found", "TENANT_NOT_FOUND", `tenant ${JSON.stringify(id)} does not exist`);
      // Settings added in later versions take their defaults on older rows.
      const complete = { ...tenant, settings: { ...DEFAULT_TENANT_SETTINGS, ...tenant.settings } };
      cache.set(id, { tenant: complete, at: now() });
      return complete;
    },
    async ensureDefault(at) {
      await store.ensure({ id: DEFAULT_TENANT_ID, name: "Default", settings: { ...DEFAULT_TENANT_SETTINGS }, createdAt: at });
    },
  };
}
