// Who may do what: pure rules over principals and roles (SUPER_ADMIN > ADMIN >
// USER; API keys confined to a tenant and permissions), with no I/O so services
// apply them before looking anything up. Roles: docs/administration.md#roles.
import { isApiKeySecret } from "./api-keys.ts";
import { DomainError, permissionDenied, unauthenticated } from "./errors.ts";
import type { ApiKeyPrincipal, Permission, Principal } from "./principal.ts";
import { DEFAULT_TENANT_ID } from "./tenants.ts";
import { AccountState, AssuranceLevel, Role, type TenantSettings } from "./types.ts";

/** The role a principal acts with: an API key has none (0, below USER). */
export function effectiveRole(principal: Principal): Role | 0 {
  if (principal.kind === "api_key") return 0;
  if (principal.role === Role.SUPER_ADMIN && principal.tenantId !== DEFAULT_TENANT_ID) return Role.ADMIN;
  return principal.role;
}

/** A super admin of the platform: may act on every tenant. */
export function isPlatformSuperAdmin(principal: Principal): boolean {
  return effectiveRole(principal) === Role.SUPER_ADMIN;
}

export interface Need {
  /** What an API key must hold to make the call; null when no API key may make it. */
  permission: Permission | null;
  /** The lowest role a person (session) needs. */
  minRole: Role;
}

/**
 * Whether the principal may make a call needing `need` in `tenantId`. Reasons a
 * client can branch on: ROLE_REQUIRED, API_KEY_NOT_ALLOWED, PERMISSION_REQUIRED,
 * OTHER_TENANT. Throws permission_denied; returns when allowed.
 */
export function assertAllowed(principal: Principal, need: Need, tenantId: string): void {
  if (principal.kind === "api_key") {
    if (need.permission === null) throw permissionDenied("API_KEY_NOT_ALLOWED", "this call needs a person's session, not an API key");
    if (!principal.permissions.includes(need.permission)) throw permissionDenied("PERMISSION_REQUIRED", `the API key lacks the ${need.permission} permission`);
  } else if (effectiveRole(principal) < need.minRole) {
    throw permissionDenied("ROLE_REQUIRED", `this call needs the ${roleName(need.minRole)} role`);
  }
  if (tenantId !== principal.tenantId && !isPlatformSuperAdmin(principal)) {
    throw permissionDenied("OTHER_TENANT", "the caller cannot act on another tenant");
  }
}

/**
 * Admin actions of a session whose tenant requires a second factor for its role
 * (TenantSettings.secondFactorMinRole, "MFA required for admins") need AAL2:
 * permission_denied STEP_UP_REQUIRED otherwise. Applies only to calls needing
 * ADMIN or above; `settings` are those of the caller's own tenant.
 */
export function assertSecondFactorForAdmin(principal: Principal, need: Need, settings: Pick<TenantSettings, "secondFactorMinRole">): void {
  if (principal.kind !== "session" || need.minRole < Role.ADMIN || settings.secondFactorMinRole === 0) return;
  if (principal.role >= settings.secondFactorMinRole && principal.assurance < AssuranceLevel.AAL2)
    throw permissionDenied("STEP_UP_REQUIRED", "this tenant requires admins to sign in with a second factor (AAL2)");
}

const VALIDATE_SESSIONS: Need = { permission: "sessions.validate", minRole: Role.SUPER_ADMIN };

/**
 * ValidateSession's caller rule. A tenant setting validate_requires_api_key
 * answers only API keys of that tenant holding sessions.validate; otherwise
 * anyone holding the token may validate it and the credential is not looked at.
 */
export function validateNeedsApiKey(settings: Pick<TenantSettings, "validateRequiresApiKey">): boolean {
  return settings.validateRequiresApiKey;
}

/** The key secret such a tenant requires: none (or a session token) → unauthenticated (API_KEY_REQUIRED). */
export function requireValidatingKey(secret: string | undefined): string {
  if (secret === undefined || !isApiKeySecret(secret)) {
    throw unauthenticated("API_KEY_REQUIRED", "this tenant requires an API key with sessions.validate (authorization: Bearer <key>)");
  }
  return secret;
}

/** The authenticated key may validate sessions of `sessionTenantId`: permission_denied (PERMISSION_REQUIRED, OTHER_TENANT) otherwise. */
export function assertMayValidate(key: ApiKeyPrincipal, sessionTenantId: string): void {
  assertAllowed(key, VALIDATE_SESSIONS, sessionTenantId);
}

/** Whether the principal may give `role` to an account of `tenantId` (nobody grants above their own role). */
export function mayGrantRole(principal: Principal, role: Role, tenantId: string): boolean {
  if (role === Role.SUPER_ADMIN && tenantId !== DEFAULT_TENANT_ID) return false; // super admins live in the default tenant
  if (principal.kind === "api_key") return role === Role.USER;
  return role <= effectiveRole(principal);
}

/** Throws permission_denied (ROLE_TOO_HIGH) unless mayGrantRole. */
export function assertMayGrantRole(principal: Principal, role: Role, tenantId: string): void {
  if (!mayGrantRole(principal, role, tenantId)) throw permissionDenied("ROLE_TOO_HIGH", `the caller cannot grant the ${roleName(role)} role here`);
}

/**
 * Whether the principal may read or change the account (`target`): a platform
 * super admin any account; an admin the USER accounts of its tenant; an API key
 * the USER accounts of its tenant. Check the tenant with assertAllowed first.
 */
export function mayManageAccount(principal: Principal, target: { tenantId: string; role: Role }): boolean {
  if (isPlatformSuperAdmin(principal)) return true;
  if (target.tenantId !== principal.tenantId) return false;
  return target.role === Role.USER && (principal.kind === "api_key" || effectiveRole(principal) >= Role.ADMIN);
}

/** Throws permission_denied (ACCOUNT_ROLE_TOO_HIGH) unless mayManageAccount. */
export function assertMayManageAccount(principal: Principal, target: { tenantId: string; role: Role }): void {
  if (!mayManageAccount(principal, target)) throw permissionDenied("ACCOUNT_ROLE_TOO_HIGH", "the caller cannot manage this account");
}

/** What a change does to an account, for the last-super-admin rule. */
export type AccountChange = { kind: "set_role"; role: Role } | { kind: "deactivate" } | { kind: "delete" };

/**
 * Whether the change would leave the platform with no active super admin.
 * `otherActiveSuperAdmins` counts the ACTIVE super admins of the default tenant
 * other than the target (AccountStore.countAccounts minus the target). The
 * count and the change should be made in one transaction, or two concurrent
 * demotions of the last two super admins could both pass.
 */
export function removesLastSuperAdmin(
  target: { tenantId: string; role: Role; state: AccountState },
  change: AccountChange,
  otherActiveSuperAdmins: number,
): boolean {
  const isActiveSuperAdmin = target.tenantId === DEFAULT_TENANT_ID && target.role === Role.SUPER_ADMIN && target.state === AccountState.ACTIVE;
  if (!isActiveSuperAdmin || otherActiveSuperAdmins > 0) return false;
  return change.kind !== "set_role" || change.role !== Role.SUPER_ADMIN;
}

/** Throws failed_precondition (LAST_SUPER_ADMIN) when removesLastSuperAdmin. */
export function assertKeepsASuperAdmin(
  target: { tenantId: string; role: Role; state: AccountState },
  change: AccountChange,
  otherActiveSuperAdmins: number,
): void {
  if (removesLastSuperAdmin(target, change, otherActiveSuperAdmins)) {
    throw new DomainError("failed_precondition", "LAST_SUPER_ADMIN", "the last active super admin cannot be demoted, deactivated or deleted");
  }
}

export function roleName(role: Role): string {
  return role === Role.SUPER_ADMIN ? "SUPER_ADMIN" : role === Role.ADMIN ? "ADMIN" : "USER";
}
