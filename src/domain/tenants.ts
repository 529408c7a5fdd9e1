// Tenants (applications): every record belongs to one. A default tenant is
// created on first start; super admins create more and change their settings.
// Settings are read through a short in-process cache because every RPC needs
// them. An update drops the tenant from this process's cache at once and
// publishes a "tenant" invalidation (Redis pub/sub in production), so every
// other instance and worker drops it too; a lost message is bounded by the
// cache's 10 seconds. While the store cannot be read, the last known settings
// keep answering (re-read in the background), so a brief database outage does
// not stop ValidateSession. Sessions already issued keep their expiry times.
import { assertNoViolations, DomainError, invalidArgument, type FieldViolation } from "./errors.ts";
import { newId } from "./ids.ts";
import { isSupportedPhoneRegion } from "./phone.ts";
import type { Random } from "./ports/random.ts";
import { createInvalidatedCache, listenForInvalidations, tenantGroup } from "./invalidated-cache.ts";
import type { InvalidationBus } from "./ports/invalidation.ts";
import type { TenantStore } from "./ports/tenants.ts";
import { Role, SUPPORTED_LOCALES, type Tenant, type TenantSettings } from "./types.ts";

export const DEFAULT_TENANT_ID = "default";

const HOUR = 3_600_000;

export const DEFAULT_TENANT_SETTINGS: TenantSettings = Object.freeze({
  inviteOnly: false,
  manualActivation: false,
  passwordMinLength: 12,
  sessionIdleTimeoutMs: 24 * HOUR,
  sessionAbsoluteLifetimeMs: 30 * 24 * HOUR,
  linkBaseUrl: "",
  passkeyRpId: "",
  passkeyOrigins: [],
  defaultLocale: "en",
  validateRequiresApiKey: false,
  signInPerIpLimit: 100,
  signInPerAccountLimit: 10,
  signUpPerIpLimit: 100,
  codeAttemptsPerIpLimit: 60,
  codeAttemptsPerAccountLimit: 10,
  messagesPerAddressLimit: 5,
  unverifiedRetentionMs: 7 * 24 * HOUR,
  deliveredMessageRetentionMs: 30 * 24 * HOUR,
  auditEventRetentionMs: 365 * 24 * HOUR,
  secondFactorMinRole: 0,
  plans: [],
  trialPlan: "",
  trialStart: "sign_up",
  renewalReminderDays: 30,
  phoneCodeLifetimeMs: 5 * 60_000,
  phoneDefaultRegion: "",
  smsDailyLimit: 1000,
  smsPerIpLimit: 10,
  guestSignInPerIpLimit: 20,
  guestRetentionMs: 30 * 24 * HOUR,
});

export interface TenantPage {
  tenants: Tenant[];
  /** Empty on the last page. */
  nextPageToken: string;
}

export interface Tenants {
  /** The tenant's settings; not_found when the tenant does not exist. */
  get(id: string): Promise<Tenant>;
  /** The tenant when the cache can answer on its own (no I/O), else undefined. */
  getCached(id: string): Tenant | undefined;
  ensureDefault(now: number): Promise<void>;
  /** Creates a tenant with a new id; invalid_argument (fields "name", "settings.*") for bad values. */
  create(input: { name: string; settings: TenantSettings }): Promise<Tenant>;
  /** Tenants in id order; page_size 1–500 (0 means 50). */
  list(input: { pageSize: number; pageToken: string }): Promise<TenantPage>;
  /**
   * Applies `change` to the current tenant and stores the result, checked
   * (field paths under `fieldPrefix`, e.g. "tenant."); concurrent updates never
   * lose one another. not_found when the tenant does not exist.
   */
  update(id: string, change: (current: Tenant) => { name: string; settings: TenantSettings }, fieldPrefix?: string): Promise<Tenant>;
  /** Starts listening for updates made by other instances. */
  listen(): Promise<void>;
}

const CACHE_MS = 10_000;
/** While the store fails, the last known settings answer for this long at most, re-read at most once a second. */
const STALE_MAX_MS = 10 * 60_000;
const STALE_RETRY_MS = 1000;
const MAX_TENANTS_KEPT = 10_000;
const DAY = 24 * HOUR;
const MAX_DURATION_MS = 366 * DAY;
const MAX_LIMIT = 1_000_000;
const NAME_MAX = 200;
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 500;
/** Out-of-band codes expire within 10 minutes (DESIGN.md). */
const PHONE_CODE_LIFETIME_MAX_MS = 10 * 60_000;
export const PASSWORD_MIN_LENGTH_RANGE = { min: 8, max: 64 } as const;

/** The wire (snake_case) name of each setting, as in identity.v1.TenantSettings. */
export const SETTING_PATHS: Record<keyof TenantSettings, string> = {
  inviteOnly: "invite_only",
  manualActivation: "manual_activation",
  passwordMinLength: "password_min_length",
  sessionIdleTimeoutMs: "session_idle_timeout",
  sessionAbsoluteLifetimeMs: "session_absolute_lifetime",
  linkBaseUrl: "link_base_url",
  passkeyRpId: "passkey_rp_id",
  passkeyOrigins: "passkey_origins",
  defaultLocale: "default_locale",
  validateRequiresApiKey: "validate_requires_api_key",
  signInPerIpLimit: "sign_in_per_ip_limit",
  signInPerAccountLimit: "sign_in_per_account_limit",
  signUpPerIpLimit: "sign_up_per_ip_limit",
  codeAttemptsPerIpLimit: "code_attempts_per_ip_limit",
  codeAttemptsPerAccountLimit: "code_attempts_per_account_limit",
  messagesPerAddressLimit: "messages_per_address_limit",
  unverifiedRetentionMs: "unverified_retention",
  deliveredMessageRetentionMs: "delivered_message_retention",
  auditEventRetentionMs: "audit_event_retention",
  secondFactorMinRole: "second_factor_min_role",
  plans: "plans",
  trialPlan: "trial_plan",
  trialStart: "trial_start",
  renewalReminderDays: "renewal_reminder_days",
  phoneCodeLifetimeMs: "phone_code_lifetime",
  phoneDefaultRegion: "phone_default_region",
  smsDailyLimit: "sms_daily_limit",
  smsPerIpLimit: "sms_per_ip_limit",
  guestSignInPerIpLimit: "guest_sign_in_per_ip_limit",
  guestRetentionMs: "guest_retention",
};

const LIMIT_SETTINGS = [
  "signInPerIpLimit",
  "signInPerAccountLimit",
  "signUpPerIpLimit",
  "codeAttemptsPerIpLimit",
  "codeAttemptsPerAccountLimit",
  "messagesPerAddressLimit",
  "smsDailyLimit",
  "smsPerIpLimit",
  "guestSignInPerIpLimit",
] as const satisfies ReadonlyArray<keyof TenantSettings>;

const DURATION_SETTINGS = [
  "sessionIdleTimeoutMs",
  "sessionAbsoluteLifetimeMs",
  "unverifiedRetentionMs",
  "deliveredMessageRetentionMs",
  "auditEventRetentionMs",
  "guestRetentionMs",
] as const satisfies ReadonlyArray<keyof TenantSettings>;

/** What is wrong with a tenant name (nothing when it is fine); `field` is its request path. */
function nameViolations(field: string, name: string): FieldViolation[] {
  if (name.trim().length === 0) return [{ field, description: "is required" }];
  if (name.length > NAME_MAX) return [{ field, description: `must be at most ${NAME_MAX} characters` }];
  if (/[\p{Cc}\p{Cf}]/u.test(name)) return [{ field, description: "must not contain control or invisible characters" }];
  return [];
}

/** Every rule a tenant's settings break, as field violations under `prefix` (e.g. "settings."). */
export function tenantSettingsViolations(settings: TenantSettings, prefix: string): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const add = (key: keyof TenantSettings, description: string) => violations.push({ field: prefix + SETTING_PATHS[key], description });
  const { min, max } = PASSWORD_MIN_LENGTH_RANGE;
  if (!Number.isInteger(settings.passwordMinLength) || settings.passwordMinLength < min || settings.passwordMinLength > max) {
    add("passwordMinLength", `must be between ${min} and ${max}`);
  }
  for (const key of DURATION_SETTINGS) {
    const value = settings[key];
    if (!Number.isInteger(value) || value <= 0) add(key, "must be a positive duration");
    else if (value > MAX_DURATION_MS) add(key, "must be at most 366 days");
  }
  if (settings.sessionIdleTimeoutMs > settings.sessionAbsoluteLifetimeMs) add("sessionIdleTimeoutMs", "must not exceed session_absolute_lifetime");
  for (const key of LIMIT_SETTINGS) {
    const value = settings[key];
    if (!Number.isInteger(value) || value < 1 || value > MAX_LIMIT) add(key, `must be between 1 and ${MAX_LIMIT}`);
  }
  if (settings.linkBaseUrl !== "" && !isHttpUrl(settings.linkBaseUrl))
    add("linkBaseUrl", "must be an http or https URL without credentials, query or fragment");
  violations.push(...passkeySettingsViolations(settings, prefix));
  if (!(SUPPORTED_LOCALES as readonly string[]).includes(settings.defaultLocale)) add("defaultLocale", `must be one of ${SUPPORTED_LOCALES.join(", ")}`);
  if (![0, Role.USER, Role.ADMIN, Role.SUPER_ADMIN].includes(settings.secondFactorMinRole)) add("secondFactorMinRole", "must be a role or unspecified");
  violations.push(...subscriptionSettingsViolations(settings, prefix));
  const codeLifetime = settings.phoneCodeLifetimeMs;
  if (!Number.isInteger(codeLifetime) || codeLifetime < 60_000 || codeLifetime > PHONE_CODE_LIFETIME_MAX_MS)
    add("phoneCodeLifetimeMs", "must be between 1 and 10 minutes");
  if (settings.phoneDefaultRegion !== "" && !isSupportedPhoneRegion(settings.phoneDefaultRegion))
    add("phoneDefaultRegion", "must be empty or an ISO 3166-1 alpha-2 region code with a known number plan, e.g. FR");
  return violations;
}

/** WebAuthn's rule: the relying party id is each origin's host or a parent domain of it. */
function passkeySettingsViolations(settings: TenantSettings, prefix: string): FieldViolation[] {
  const v: FieldViolation[] = [];
  const rpId = settings.passkeyRpId;
  if (typeof rpId !== "string" || (rpId !== "" && !/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(rpId)))
    v.push({ field: `${prefix}passkey_rp_id`, description: "must be empty or a lower-case host name, e.g. example.com" });
  const origins = Array.isArray(settings.passkeyOrigins) ? settings.passkeyOrigins : [];
  if (!Array.isArray(settings.passkeyOrigins) || origins.length > 20) v.push({ field: `${prefix}passkey_origins`, description: "must be at most 20 origins" });
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.origin !== origin) {
      v.push({ field: `${prefix}passkey_origins`, description: "each must be an http(s) origin (scheme, host and port only), e.g. https://app.example.com" });
      break;
    }
    if (rpId !== "" && url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`)) {
      v.push({ field: `${prefix}passkey_origins`, description: "each origin's host must be passkey_rp_id or one of its subdomains" });
      break;
    }
  }
  return v;
}

function isHttpUrl(value: string): boolean {
  if (value.length > 2000) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === "" && url.search === "" && url.hash === "";
  } catch {
    return false;
  }
}

/** The subscription settings' rules (part of tenantSettingsViolations); plans themselves are checked when set. */
function subscriptionSettingsViolations(settings: TenantSettings, prefix: string): FieldViolation[] {
  const v: FieldViolation[] = [];
  if (settings.trialPlan !== "") {
    const plan = settings.plans.find((p) => p.id === settings.trialPlan);
    if (!plan || plan.trialDays <= 0) v.push({ field: `${prefix}trial_plan`, description: "must name one of the tenant's plans with trial_days above 0" });
  }
  if (settings.trialStart !== "sign_up" && settings.trialStart !== "verification")
    v.push({ field: `${prefix}trial_start`, description: 'must be "sign_up" or "verification"' });
  if (!Number.isInteger(settings.renewalReminderDays) || settings.renewalReminderDays < 1 || settings.renewalReminderDays > 366)
    v.push({ field: `${prefix}renewal_reminder_days`, description: "must be between 1 and 366" });
  return v;
}

/** A stored tenant with settings added in later versions at their defaults. */
function complete(tenant: Tenant): Tenant {
  return { ...tenant, settings: { ...DEFAULT_TENANT_SETTINGS, ...tenant.settings } };
}

const VISIT_PAGE = 100;

/** Calls `visit` with every tenant (settings completed with their defaults), one after the other, reading them by id in pages. */
export async function forEachTenant(store: Pick<TenantStore, "list">, visit: (tenant: Tenant) => Promise<void>): Promise<void> {
  let afterId: string | undefined;
  for (;;) {
    const page = await store.list({ limit: VISIT_PAGE, ...(afterId === undefined ? {} : { afterId }) });
    for (const tenant of page) await visit(complete(tenant));
    if (page.length < VISIT_PAGE) return;
    afterId = page[page.length - 1]!.id;
  }
}

const notFound = (id: string) => new DomainError("not_found", "TENANT_NOT_FOUND", `tenant ${JSON.stringify(id.slice(0, 64))} does not exist`);

const PAGE_TOKEN_PREFIX = "tenants:";

function decodePageToken(token: string): string | undefined {
  if (token === "") return undefined;
  const decoded = token.length <= 200 ? Buffer.from(token, "base64url").toString("utf8") : "";
  if (!decoded.startsWith(PAGE_TOKEN_PREFIX) || decoded.length === PAGE_TOKEN_PREFIX.length) {
    throw invalidArgument("page_token", "is not a token from a previous call", "INVALID_PAGE_TOKEN");
  }
  return decoded.slice(PAGE_TOKEN_PREFIX.length);
}

/** The page size to use: 0 means the default; out of range is invalid_argument. */
export function pageSizeOf(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(requested) || requested < 0 || requested > MAX_PAGE_SIZE) {
    throw invalidArgument("page_size", `must be between 0 and ${MAX_PAGE_SIZE}`);
  }
  return requested;
}

export function createTenants(store: TenantStore, now: () => number, invalidation?: InvalidationBus, random?: Random): Tenants {
  const cache = createInvalidatedCache<Tenant>({ maxEntries: MAX_TENANTS_KEPT, maxAgeMs: CACHE_MS }, now);
  // Tenants whose last re-read failed, and when to try again: meanwhile their
  // last known settings answer at once (the store is down, every call would wait for it).
  const failing = new Map<string, { since: number; retryAt: number }>();
  // The settings last read of each tenant, kept apart from the cache (which a lost
  // subscription empties): the answer while the store cannot be read.
  const lastKnown = new Map<string, Tenant>();

  function remember(id: string, tenant: Tenant | undefined) {
    lastKnown.delete(id);
    if (!tenant) return;
    if (lastKnown.size >= MAX_TENANTS_KEPT) lastKnown.delete(lastKnown.keys().next().value!);
    lastKnown.set(id, tenant);
  }
  const refreshing = new Map<string, Promise<Tenant>>();

  /** Reads the tenant from the store (one read in flight per tenant) and caches it. */
  function load(id: string): Promise<Tenant> {
    let pending = refreshing.get(id);
    if (!pending) {
      const epoch = cache.epoch();
      pending = store
        .get(id)
        .then(
          (tenant) => {
            failing.delete(id);
            if (!tenant) {
              remember(id, undefined);
              throw notFound(id);
            }
            const completed = complete(tenant);
            cache.set(id, completed, epoch, [tenantGroup(id)]);
            if (epoch === cache.epoch()) remember(id, completed);
            return completed;
          },
          (error: unknown) => {
            if (lastKnown.has(id)) failing.set(id, { since: failing.get(id)?.since ?? now(), retryAt: now() + STALE_RETRY_MS });
            throw error;
          },
        )
        .finally(() => refreshing.delete(id));
      refreshing.set(id, pending);
    }
    return pending;
  }

  /** The last known settings while the store cannot be read (within STALE_MAX_MS), refreshed in the background. */
  function stale(id: string): Tenant | undefined {
    const failure = failing.get(id);
    const known = lastKnown.get(id);
    if (!failure || !known || now() - failure.since > STALE_MAX_MS) return undefined;
    if (now() >= failure.retryAt) load(id).catch(() => {});
    return known;
  }

  return {
    async get(id) {
      const cached = cache.get(id) ?? stale(id);
      if (cached) return cached;
      try {
        return await load(id);
      } catch (error) {
        const failure = failing.get(id);
        // Only a failed read counts (load() records it), never not_found.
        const known = !failure || now() - failure.since > STALE_MAX_MS ? undefined : lastKnown.get(id);
        if (known) return known;
        throw error;
      }
    },

    getCached: (id) => cache.get(id) ?? stale(id),

    async ensureDefault(at) {
      await store.ensure({ id: DEFAULT_TENANT_ID, name: "Default", settings: { ...DEFAULT_TENANT_SETTINGS }, createdAt: at });
    },

    async create({ name, settings }) {
      assertNoViolations([...nameViolations("name", name), ...tenantSettingsViolations(settings, "settings.")]);
      const at = now();
      const tenant: Tenant = { id: newId(at, random), name: name.trim(), settings: { ...settings }, createdAt: at };
      if (!(await store.create(tenant))) throw new DomainError("already_exists", "TENANT_EXISTS", "a tenant with this id exists");
      return tenant;
    },

    async list({ pageSize, pageToken }) {
      const size = pageSizeOf(pageSize);
      const afterId = decodePageToken(pageToken);
      const rows = await store.list({ ...(afterId === undefined ? {} : { afterId }), limit: size + 1 });
      const tenants = rows.slice(0, size).map(complete);
      const last = tenants[tenants.length - 1];
      const nextPageToken = rows.length > size && last ? Buffer.from(PAGE_TOKEN_PREFIX + last.id, "utf8").toString("base64url") : "";
      return { tenants, nextPageToken };
    },

    async update(id, change, fieldPrefix = "") {
      const updated = await store.update(id, (current) => {
        const next = change(complete(current));
        const name = next.name.trim();
        assertNoViolations([...nameViolations(`${fieldPrefix}name`, next.name), ...tenantSettingsViolations(next.settings, `${fieldPrefix}settings.`)]);
        return { name, settings: next.settings };
      });
      if (!updated) throw notFound(id);
      cache.delete(id);
      remember(id, complete(updated));
      failing.delete(id);
      await invalidation?.publish([{ kind: "tenant", tenantId: id }]);
      return complete(updated);
    },

    listen: async () => {
      if (!invalidation) return;
      await listenForInvalidations(invalidation, cache, (message) => {
        if (message.kind !== "tenant") return;
        cache.deleteGroup(tenantGroup(message.tenantId));
        remember(message.tenantId, undefined); // changed elsewhere: what this instance knows is no longer the last
      });
    },
  };
}
