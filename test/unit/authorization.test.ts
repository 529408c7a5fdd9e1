// The authorization rules (src/domain/authorization.ts) over every kind of
// caller, as tables: a rule change shows up as a failing row.
import { describe, expect, it } from "vitest";
import {
  assertAllowed,
  assertKeepsASuperAdmin,
  assertSecondFactorForAdmin,
  effectiveRole,
  isPlatformSuperAdmin,
  mayGrantRole,
  mayManageAccount,
  removesLastSuperAdmin,
  type AccountChange,
  type Need,
} from "../../src/domain/authorization.ts";
import { DomainError } from "../../src/domain/errors.ts";
import type { ApiKeyPrincipal, Permission, Principal, SessionPrincipal } from "../../src/domain/principal.ts";
import { AccountState, AssuranceLevel, Role } from "../../src/domain/types.ts";

const HOME = "default";
const OTHER = "0197a1b2-0000-7000-8000-000000000001";

function person(role: Role, tenantId = HOME): SessionPrincipal {
  return { kind: "session", tenantId, accountId: "a", role, sessionId: "s", tokenHash: "h", assurance: AssuranceLevel.AAL1, authenticatedAt: 0 };
}
function key(permissions: Permission[], tenantId = HOME): ApiKeyPrincipal {
  return { kind: "api_key", tenantId, apiKeyId: "k", permissions };
}

const callers: Record<string, Principal> = {
  user: person(Role.USER),
  admin: person(Role.ADMIN),
  superAdmin: person(Role.SUPER_ADMIN),
  superAdminRoleInOtherTenant: person(Role.SUPER_ADMIN, OTHER),
  keyWithPermission: key(["users.read"]),
  keyWithout: key(["sessions.validate"]),
};

/** The reason a call is refused, or "allowed". */
function outcome(principal: Principal, need: Need, tenantId: string): string {
  try {
    assertAllowed(principal, need, tenantId);
    return "allowed";
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    expect(error.kind).toBe("permission_denied");
    return error.reason;
  }
}

describe("assertAllowed", () => {
  const superAdminOnly: Need = { permission: null, minRole: Role.SUPER_ADMIN };
  const adminOrKey: Need = { permission: "users.read", minRole: Role.ADMIN };

  const rows: Array<[caller: keyof typeof callers, need: Need, tenant: string, expected: string]> = [
    ["user", superAdminOnly, HOME, "ROLE_REQUIRED"],
    ["admin", superAdminOnly, HOME, "ROLE_REQUIRED"],
    ["superAdmin", superAdminOnly, HOME, "allowed"],
    ["superAdmin", superAdminOnly, OTHER, "allowed"],
    ["superAdminRoleInOtherTenant", superAdminOnly, OTHER, "ROLE_REQUIRED"],
    ["keyWithPermission", superAdminOnly, HOME, "API_KEY_NOT_ALLOWED"],
    ["user", adminOrKey, HOME, "ROLE_REQUIRED"],
    ["admin", adminOrKey, HOME, "allowed"],
    ["admin", adminOrKey, OTHER, "OTHER_TENANT"],
    ["superAdmin", adminOrKey, OTHER, "allowed"],
    ["superAdminRoleInOtherTenant", adminOrKey, OTHER, "allowed"],
    ["superAdminRoleInOtherTenant", adminOrKey, HOME, "OTHER_TENANT"],
    ["keyWithPermission", adminOrKey, HOME, "allowed"],
    ["keyWithPermission", adminOrKey, OTHER, "OTHER_TENANT"],
    ["keyWithout", adminOrKey, HOME, "PERMISSION_REQUIRED"],
    // Permission is checked before the tenant: a key learns nothing about another tenant.
    ["keyWithout", adminOrKey, OTHER, "PERMISSION_REQUIRED"],
    ["user", adminOrKey, OTHER, "ROLE_REQUIRED"],
  ];
  it.each(rows)("%s calling %o on %s → %s", (caller, need, tenant, expected) => {
    expect(outcome(callers[caller]!, need, tenant)).toBe(expected);
  });

  it("gives a SUPER_ADMIN role outside the default tenant only ADMIN's powers", () => {
    expect(effectiveRole(person(Role.SUPER_ADMIN, OTHER))).toBe(Role.ADMIN);
    expect(isPlatformSuperAdmin(person(Role.SUPER_ADMIN, OTHER))).toBe(false);
    expect(isPlatformSuperAdmin(person(Role.SUPER_ADMIN))).toBe(true);
    expect(isPlatformSuperAdmin(key(["sessions.validate", "users.read", "users.write", "audit.read"]))).toBe(false);
  });
});

describe("mayGrantRole: nobody grants a role above their own", () => {
  const rows: Array<[caller: keyof typeof callers, role: Role, tenant: string, expected: boolean]> = [
    ["user", Role.USER, HOME, true],
    ["user", Role.ADMIN, HOME, false],
    ["admin", Role.ADMIN, HOME, true],
    ["admin", Role.SUPER_ADMIN, HOME, false],
    ["superAdmin", Role.SUPER_ADMIN, HOME, true],
    ["superAdmin", Role.ADMIN, OTHER, true],
    // Super admins live in the default tenant only.
    ["superAdmin", Role.SUPER_ADMIN, OTHER, false],
    ["keyWithPermission", Role.USER, HOME, true],
    ["keyWithPermission", Role.ADMIN, HOME, false],
  ];
  it.each(rows)("%s granting role %i in %s → %s", (caller, role, tenant, expected) => {
    expect(mayGrantRole(callers[caller]!, role, tenant)).toBe(expected);
  });
});

describe("mayManageAccount", () => {
  const rows: Array<[caller: keyof typeof callers, target: { tenantId: string; role: Role }, expected: boolean]> = [
    ["admin", { tenantId: HOME, role: Role.USER }, true],
    ["admin", { tenantId: HOME, role: Role.ADMIN }, false],
    ["admin", { tenantId: OTHER, role: Role.USER }, false],
    ["superAdmin", { tenantId: OTHER, role: Role.ADMIN }, true],
    ["superAdmin", { tenantId: HOME, role: Role.SUPER_ADMIN }, true],
    ["keyWithPermission", { tenantId: HOME, role: Role.USER }, true],
    ["keyWithPermission", { tenantId: HOME, role: Role.ADMIN }, false],
    ["keyWithPermission", { tenantId: OTHER, role: Role.USER }, false],
    ["user", { tenantId: HOME, role: Role.USER }, false],
  ];
  it.each(rows)("%s managing %o → %s", (caller, target, expected) => {
    expect(mayManageAccount(callers[caller]!, target)).toBe(expected);
  });
});

describe("the last active super admin", () => {
  const last = { tenantId: HOME, role: Role.SUPER_ADMIN, state: AccountState.ACTIVE };
  const changes: AccountChange[] = [{ kind: "set_role", role: Role.ADMIN }, { kind: "set_role", role: Role.USER }, { kind: "deactivate" }, { kind: "delete" }];

  it.each(changes)("cannot be removed by %o", (change) => {
    expect(removesLastSuperAdmin(last, change, 0)).toBe(true);
    expect(() => assertKeepsASuperAdmin(last, change, 0)).toThrow(expect.objectContaining({ kind: "failed_precondition", reason: "LAST_SUPER_ADMIN" }));
  });

  it.each(changes)("can be when another active one remains: %o", (change) => {
    expect(removesLastSuperAdmin(last, change, 1)).toBe(false);
    expect(() => assertKeepsASuperAdmin(last, change, 1)).not.toThrow();
  });

  it("keeping the role is no removal, and the rule concerns only active super admins", () => {
    expect(removesLastSuperAdmin(last, { kind: "set_role", role: Role.SUPER_ADMIN }, 0)).toBe(false);
    expect(removesLastSuperAdmin({ ...last, state: AccountState.DEACTIVATED }, { kind: "delete" }, 0)).toBe(false);
    expect(removesLastSuperAdmin({ ...last, role: Role.ADMIN }, { kind: "delete" }, 0)).toBe(false);
  });
});

describe("a second factor required per role (second_factor_min_role)", () => {
  const admin: Need = { permission: "users.read", minRole: Role.ADMIN };
  const own: Need = { permission: null, minRole: Role.USER };
  const refused = (principal: Principal, need: Need, minRole: 0 | Role) => {
    try {
      assertSecondFactorForAdmin(principal, need, { secondFactorMinRole: minRole });
      return "allowed";
    } catch (error) {
      return error instanceof DomainError ? `${error.kind} ${error.reason}` : "other";
    }
  };
  const aal2 = (role: Role): SessionPrincipal => ({ ...person(role), assurance: AssuranceLevel.AAL2 });

  it("refuses admin calls of covered roles below AAL2 with STEP_UP_REQUIRED, and nothing else", () => {
    expect(refused(person(Role.ADMIN), admin, Role.ADMIN)).toBe("permission_denied STEP_UP_REQUIRED");
    expect(refused(person(Role.SUPER_ADMIN), admin, Role.ADMIN)).toBe("permission_denied STEP_UP_REQUIRED");
    expect(refused(aal2(Role.ADMIN), admin, Role.ADMIN)).toBe("allowed");
    expect(refused(person(Role.ADMIN), admin, 0)).toBe("allowed"); // nobody required
    expect(refused(person(Role.ADMIN), admin, Role.SUPER_ADMIN)).toBe("allowed"); // only super admins required
    expect(refused(person(Role.SUPER_ADMIN), admin, Role.SUPER_ADMIN)).toBe("permission_denied STEP_UP_REQUIRED");
    expect(refused(person(Role.ADMIN), own, Role.USER)).toBe("allowed"); // a person's own calls are not admin actions
    expect(refused(key(["users.read"]), admin, Role.USER)).toBe("allowed"); // API keys have no second factor
  });
});
