// AdminService: tenants and service API keys. Proto ⇄ domain only; the rules
// live in src/domain/tenants.ts, src/domain/api-keys.ts and (who may call)
// src/domain/authorization.ts, applied through authorize() first of all.
//
// Who may call: CreateTenant, ListTenants, UpdateTenant and the three API key
// RPCs need a super admin; GetTenant also answers an admin of that tenant.
// API keys may call none of them.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs, type Duration } from "@bufbuild/protobuf/wkt";
import {
  ApiKeySchema,
  TenantSchema,
  TenantSettingsSchema,
  type ApiKey as ApiKeyMessage,
  type Tenant as TenantMessage,
  type TenantSettings as TenantSettingsMessage,
} from "../../gen/identity/v1/admin_service_pb.js";
import { DomainError, invalidArgument } from "../domain/errors.ts";
import { isId } from "../domain/ids.ts";
import type { StoredApiKey } from "../domain/ports/api-keys.ts";
import { actorOf } from "../domain/principal.ts";
import { DEFAULT_TENANT_SETTINGS, SETTING_PATHS } from "../domain/tenants.ts";
import { Role, type Tenant, type TenantSettings } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

/** The settings identity.v1.TenantSettings carries: domain key → message field. Keys ending in "Ms" are Durations. */
const PROTO_SETTINGS = {
  inviteOnly: "inviteOnly",
  manualActivation: "manualActivation",
  passwordMinLength: "passwordMinLength",
  sessionIdleTimeoutMs: "sessionIdleTimeout",
  sessionAbsoluteLifetimeMs: "sessionAbsoluteLifetime",
  linkBaseUrl: "linkBaseUrl",
  passkeyRpId: "passkeyRpId",
  passkeyOrigins: "passkeyOrigins",
  defaultLocale: "defaultLocale",
  validateRequiresApiKey: "validateRequiresApiKey",
  signInPerIpLimit: "signInPerIpLimit",
  signInPerAccountLimit: "signInPerAccountLimit",
  unverifiedRetentionMs: "unverifiedRetention",
  deliveredMessageRetentionMs: "deliveredMessageRetention",
  auditEventRetentionMs: "auditEventRetention",
  secondFactorMinRole: "secondFactorMinRole",
  trialPlan: "trialPlan",
  trialStart: "trialStart",
  renewalReminderDays: "renewalReminderDays",
  phoneCodeLifetimeMs: "phoneCodeLifetime",
  phoneDefaultRegion: "phoneDefaultRegion",
  smsDailyLimit: "smsDailyLimit",
  smsPerIpLimit: "smsPerIpLimit",
  guestSignInPerIpLimit: "guestSignInPerIpLimit",
  guestRetentionMs: "guestRetention",
} as const satisfies Partial<Record<keyof TenantSettings, keyof TenantSettingsMessage>>;

type ProtoSetting = keyof typeof PROTO_SETTINGS;
const PROTO_SETTING_KEYS = Object.keys(PROTO_SETTINGS) as ProtoSetting[];
/** "settings.<wire name>" → domain key, for update masks. */
const SETTING_BY_PATH = new Map(PROTO_SETTING_KEYS.map((key) => [`settings.${SETTING_PATHS[key]}`, key]));

const isDuration = (key: ProtoSetting) => key.endsWith("Ms");

/** Milliseconds of a Duration; NaN when absent or out of range (the settings check names the field). */
function durationToMs(duration: Duration | undefined): number {
  if (!duration) return Number.NaN;
  const seconds = Number(duration.seconds);
  if (!Number.isSafeInteger(seconds) || duration.nanos < 0) return Number.NaN;
  return seconds * 1000 + Math.floor(duration.nanos / 1_000_000);
}

function readSetting(message: TenantSettingsMessage, key: ProtoSetting): TenantSettings[ProtoSetting] {
  const value = message[PROTO_SETTINGS[key]];
  return isDuration(key) ? durationToMs(value as Duration | undefined) : (value as TenantSettings[ProtoSetting]);
}

/** Whether the message sets the field (proto3: a zero value means unset). */
function isSet(message: TenantSettingsMessage, key: ProtoSetting): boolean {
  const value = message[PROTO_SETTINGS[key]];
  return value !== undefined && value !== 0 && value !== "" && value !== false && !(Array.isArray(value) && value.length === 0);
}

function withSetting(settings: TenantSettings, key: ProtoSetting, value: TenantSettings[ProtoSetting]): TenantSettings {
  return { ...settings, [key]: value };
}

export function tenantToProto(tenant: Tenant): TenantMessage {
  const settings: Record<string, unknown> = {};
  for (const key of PROTO_SETTING_KEYS) {
    const value = tenant.settings[key];
    settings[PROTO_SETTINGS[key]] = isDuration(key) ? durationFromMs(value as number) : value;
  }
  return create(TenantSchema, {
    id: tenant.id,
    name: tenant.name,
    settings: create(TenantSettingsSchema, settings),
    createTime: timestampFromMs(tenant.createdAt),
  });
}

export function apiKeyToProto(key: StoredApiKey): ApiKeyMessage {
  return create(ApiKeySchema, {
    id: key.id,
    tenantId: key.tenantId,
    name: key.name,
    permissions: key.permissions,
    createTime: timestampFromMs(key.createdAt),
    ...(key.revokedAt === null ? {} : { revokeTime: timestampFromMs(key.revokedAt) }),
  });
}

/** The settings of a new tenant: safe defaults, overridden by every field the request sets. */
function newTenantSettings(message: TenantSettingsMessage | undefined): TenantSettings {
  let settings: TenantSettings = { ...DEFAULT_TENANT_SETTINGS };
  if (!message) return settings;
  for (const key of PROTO_SETTING_KEYS) if (isSet(message, key)) settings = withSetting(settings, key, readSetting(message, key));
  return settings;
}

/** What an UpdateTenant mask changes: "name", "settings" (every field) and "settings.<field>". */
function parseTenantMask(paths: readonly string[]): { name: boolean; settings: ProtoSetting[] } {
  if (paths.length === 0) throw invalidArgument("update_mask", `name the fields to change: "name", "settings" or "settings.<field>"`);
  const changes = { name: false, settings: new Set<ProtoSetting>() };
  for (const path of paths) {
    if (path === "name") changes.name = true;
    else if (path === "settings") PROTO_SETTING_KEYS.forEach((key) => changes.settings.add(key));
    else {
      const key = SETTING_BY_PATH.get(path);
      if (key === undefined) throw invalidArgument("update_mask", `"${path.slice(0, 80)}" is not an updatable tenant field`);
      changes.settings.add(key);
    }
  }
  return { name: changes.name, settings: [...changes.settings] };
}

const SUPER_ADMIN_ONLY = { permission: null, minRole: Role.SUPER_ADMIN } as const;

export type TenantRpcs = "createTenant" | "getTenant" | "listTenants" | "updateTenant" | "createApiKey" | "listApiKeys" | "revokeApiKey";

export function tenantHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, TenantRpcs> {
  return {
    async createTenant(req, ctx) {
      const { principal } = await authorize(app, ctx, SUPER_ADMIN_ONLY);
      const tenant = await audited(
        app,
        ctx,
        principal,
        { tenantId: principal.tenantId, action: "tenant.create", target: "" },
        () => app.tenants.create({ name: req.name, settings: newTenantSettings(req.settings) }),
        // The new tenant's chain starts with its own creation.
        (created) => ({ tenantId: created.id, target: `tenant:${created.id}` }),
      );
      return { tenant: tenantToProto(tenant) };
    },

    async getTenant(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { permission: null, minRole: Role.ADMIN, tenantId: req.tenantId });
      const tenant = await audited(app, ctx, principal, { tenantId, action: "tenant.get", target: `tenant:${tenantId}` }, () => app.tenants.get(tenantId));
      return { tenant: tenantToProto(tenant) };
    },

    async listTenants(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, SUPER_ADMIN_ONLY);
      const page = await audited(app, ctx, principal, { tenantId, action: "tenant.list", target: "" }, () =>
        app.tenants.list({ pageSize: req.pageSize, pageToken: req.pageToken }),
      );
      return { tenants: page.tenants.map(tenantToProto), nextPageToken: page.nextPageToken };
    },

    async updateTenant(req, ctx) {
      const { principal } = await authorize(app, ctx, SUPER_ADMIN_ONLY);
      const input = req.tenant;
      if (!input) throw invalidArgument("tenant", "is required");
      if (input.id === "") throw invalidArgument("tenant.id", "is required");
      const changes = parseTenantMask(req.updateMask?.paths ?? []);
      const settingsIn = input.settings ?? create(TenantSettingsSchema);
      const tenant = await audited(app, ctx, principal, { tenantId: input.id, action: "tenant.update", target: `tenant:${input.id}` }, () =>
        app.tenants.update(
          input.id,
          (current) => ({
            name: changes.name ? input.name : current.name,
            settings: changes.settings.reduce((settings, key) => withSetting(settings, key, readSetting(settingsIn, key)), current.settings),
          }),
          "tenant.",
        ),
      );
      return { tenant: tenantToProto(tenant) };
    },

    async createApiKey(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...SUPER_ADMIN_ONLY, tenantId: req.tenantId });
      const { key, secret } = await audited(
        app,
        ctx,
        principal,
        { tenantId, action: "api_key.create", target: "" },
        async () => {
          await app.tenants.get(tenantId);
          return app.apiKeys.create({ tenantId, name: req.name, permissions: req.permissions, createdBy: actorOf(principal) });
        },
        (created) => ({ tenantId, target: `api_key:${created.key.id}` }),
      );
      return { apiKey: apiKeyToProto(key), secret };
    },

    async listApiKeys(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...SUPER_ADMIN_ONLY, tenantId: req.tenantId });
      const keys = await audited(app, ctx, principal, { tenantId, action: "api_key.list", target: "" }, async () => {
        await app.tenants.get(tenantId);
        return app.apiKeys.list(tenantId);
      });
      return { apiKeys: keys.map(apiKeyToProto) };
    },

    async revokeApiKey(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, SUPER_ADMIN_ONLY);
      if (req.apiKeyId === "") throw invalidArgument("api_key_id", "is required");
      // A malformed id names no key: answered like an unknown one, without a query, and not
      // recorded as the target (an audit target names an id, never what a caller typed).
      const known = isId(req.apiKeyId) ? await app.apiKeys.find(req.apiKeyId) : undefined;
      const where = { tenantId: known?.tenantId ?? tenantId, action: "api_key.revoke", target: isId(req.apiKeyId) ? `api_key:${req.apiKeyId}` : "" };
      await audited(app, ctx, principal, where, () => {
        if (!known) throw new DomainError("not_found", "API_KEY_NOT_FOUND", "API key not found");
        return app.apiKeys.revoke(known.id);
      });
      return {};
    },
  };
}
