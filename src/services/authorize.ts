// The one authorization entry point of the services, and the audit record of
// what an authorized admin then did. Rules live in src/domain/authorization.ts;
// this applies them to the caller the authentication interceptor found
// (src/interceptors/authentication.ts).
import type { HandlerContext } from "@connectrpc/connect";
import { assertAllowed, assertSecondFactorForAdmin, type Need } from "../domain/authorization.ts";
import { DomainError, invalidArgument, permissionDenied, unauthenticated } from "../domain/errors.ts";
import { actorOf, type Principal } from "../domain/principal.ts";
import { AccountState, Role } from "../domain/types.ts";
import type { App } from "./app.ts";
import { requestMeta, requirePrincipal } from "./call-context.ts";

const TENANT_ID_SHAPE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Authorizes a call, before anything the call names is looked up — so a caller
 * who may not make the call learns nothing about whether its target exists
 * (permission before existence). The caller was authenticated by the
 * interceptor (RPCs of access "principal"): no credential → unauthenticated
 * (AUTHENTICATION_REQUIRED); a bad, expired or revoked one → unauthenticated
 * (SESSION_INVALID, API_KEY_INVALID). Then:
 *
 * - A session whose role is below `need.minRole` → permission_denied
 *   (ROLE_REQUIRED). For calls needing ADMIN or above, the role is re-read from
 *   the account, so a demotion or deactivation counts at once even for a live
 *   session (the lower of the session's and the account's role applies).
 * - An API key: permission_denied when `need.permission` is null
 *   (API_KEY_NOT_ALLOWED) or the key lacks it (PERMISSION_REQUIRED).
 * - The tenant acted on is `need.tenantId` when non-empty (a request field),
 *   else the x-tenant-id header, else the caller's own. Another tenant than the
 *   caller's → permission_denied (OTHER_TENANT), except for super admins (who
 *   live in the default tenant and act on any tenant by naming it). A malformed
 *   tenant id named by a super admin → invalid_argument.
 *
 * Returns the caller and the tenant to act in; the tenant's existence is NOT
 * checked (the call looks it up and answers not_found).
 */
export async function authorize(app: App, ctx: HandlerContext, need: Need & { tenantId?: string }): Promise<{ principal: Principal; tenantId: string }> {
  const principal = await withCurrentRole(app, requirePrincipal(ctx), need.minRole);
  const header = ctx.requestHeader.get("x-tenant-id");
  const [field, named]: [string, string] = need.tenantId ? ["tenant_id", need.tenantId] : header ? ["x-tenant-id", header] : ["", principal.tenantId];
  assertAllowed(principal, need, named);
  if (principal.kind === "session" && need.minRole >= Role.ADMIN)
    assertSecondFactorForAdmin(principal, need, (await app.tenants.get(principal.tenantId)).settings);
  if (!TENANT_ID_SHAPE.test(named)) throw invalidArgument(field, "is not a valid tenant id");
  return { principal, tenantId: named };
}

/** A session acting as ADMIN or above, with the account's current role and state applied. */
async function withCurrentRole(app: App, principal: Principal, minRole: Role): Promise<Principal> {
  if (principal.kind !== "session" || minRole <= Role.USER || principal.role < minRole) return principal;
  const account = await app.accounts.get(principal.tenantId, principal.accountId).catch((error: unknown) => {
    if (error instanceof DomainError && error.kind === "not_found") throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
    throw error;
  });
  if (account.state !== AccountState.ACTIVE) throw permissionDenied("ACCOUNT_NOT_ACTIVE", "the caller's account is not active");
  return account.role < principal.role ? { ...principal, role: account.role } : principal;
}

/**
 * Runs an admin action and appends its audit event — outcome "success", or the
 * refusal's reason (then rethrown) — with the caller, IP, user agent and the
 * reason they stated. Call it after authorize(): a caller refused there never
 * reaches an action. Unexpected errors (a backend down) are not recorded.
 */
export async function audited<T>(
  app: App,
  ctx: HandlerContext,
  principal: Principal,
  event: { tenantId: string; action: string; target: string; reason?: string },
  action: () => Promise<T>,
  /** The tenant and target known only once the action succeeded (a new tenant's id). */
  after?: ((result: T) => { tenantId: string; target: string }) | undefined,
  /** The outcome of a success when it is not plainly "success" (an idempotent retry: "replayed"). */
  outcomeOf?: (result: T) => string,
): Promise<T> {
  const meta = requestMeta(ctx);
  const record = (outcome: string, where: { tenantId: string; target: string }) =>
    app.audit.record({
      ...where,
      actor: actorOf(principal),
      action: event.action,
      reason: event.reason ?? "",
      ip: meta.ip,
      userAgent: meta.userAgent,
      outcome,
    });
  let result: T;
  try {
    result = await action();
  } catch (error) {
    // A tenant that does not exist has no chain to record in: the caller's has it.
    if (error instanceof DomainError) await record(error.reason, error.reason === "TENANT_NOT_FOUND" ? { ...event, tenantId: principal.tenantId } : event);
    throw error;
  }
  await record(outcomeOf?.(result) ?? "success", after ? after(result) : event);
  return result;
}

/** Audits a change people make to their own data (rectification): actor and target are the account. */
export function selfAudited<T>(app: App, ctx: HandlerContext, principal: Principal, action: string, reason: string, change: () => Promise<T>): Promise<T> {
  const target = principal.kind === "session" ? `account:${principal.accountId}` : "";
  return audited(app, ctx, principal, { tenantId: principal.tenantId, action, target, reason }, change);
}
