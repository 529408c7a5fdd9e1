// ValidateSession, the hot path, once for every transport: the session behind
// the token, then the tenant's caller rule (src/domain/authorization.ts), then
// the account's plan (src/domain/subscriptions.ts), then the answer. Both the
// gRPC fast path (src/server/fast-path.ts) and the connect handler call this,
// so they cannot disagree. When everything it needs is cached it answers
// synchronously (no promise, no microtask): the fast path then completes a call
// within the stream's 'end' event.
import type { ApiKeys } from "./api-keys.ts";
import { assertMayValidate, requireValidatingKey, validateNeedsApiKey } from "./authorization.ts";
import { invalidArgument } from "./errors.ts";
import type { Sessions, ValidSession } from "./sessions.ts";
import type { SubscriptionCache, SubscriptionView } from "./subscriptions.ts";
import type { Tenants } from "./tenants.ts";
import type { Tenant } from "./types.ts";

export interface SessionValidationDeps {
  sessions: Pick<Sessions, "validate">;
  tenants: Pick<Tenants, "get" | "getCached">;
  apiKeys: Pick<ApiKeys, "authenticate" | "authenticateCached">;
  subscriptionCache: Pick<SubscriptionCache, "get" | "getCached">;
}

/** A valid session with what its answer needs: the tenant (its plans) and the account's subscription. */
export interface ValidatedSession extends ValidSession {
  tenant: Tenant;
  subscription: SubscriptionView;
}

/**
 * The live session behind `token`, if the caller may validate it, with its
 * tenant and the account's subscription. `credential`
 * reads the caller's bearer secret; it is called only when the session's
 * tenant requires an API key (so a malformed authorization header matters
 * only then). Errors: invalid_argument (session_token empty), unauthenticated
 * (SESSION_INVALID; API_KEY_REQUIRED, API_KEY_INVALID), permission_denied
 * (PERMISSION_REQUIRED, OTHER_TENANT). Synchronous when nothing needs I/O.
 */
export function validateSession(
  deps: SessionValidationDeps,
  token: string,
  credential: () => string | undefined,
): ValidatedSession | Promise<ValidatedSession> {
  if (token === "") throw invalidArgument("session_token", "is required");
  const valid = deps.sessions.validate(token);
  if (!(valid instanceof Promise)) return authorizeValidation(deps, valid, credential);
  return valid.then((found) => authorizeValidation(deps, found, credential));
}

function authorizeValidation(
  deps: SessionValidationDeps,
  valid: ValidSession,
  credential: () => string | undefined,
): ValidatedSession | Promise<ValidatedSession> {
  const { tenantId, accountId } = valid.session;
  const tenant = deps.tenants.getCached(tenantId);
  const subscription = deps.subscriptionCache.getCached(accountId);
  if (tenant && subscription) {
    if (!validateNeedsApiKey(tenant.settings)) return { tokenHash: valid.tokenHash, session: valid.session, tenant, subscription };
    const cachedKey = deps.apiKeys.authenticateCached(requireValidatingKey(credential()));
    if (cachedKey) {
      assertMayValidate(cachedKey, tenantId);
      return { tokenHash: valid.tokenHash, session: valid.session, tenant, subscription };
    }
  }
  return (async () => {
    const [current, plan] = await Promise.all([tenant ?? deps.tenants.get(tenantId), subscription ?? deps.subscriptionCache.get(tenantId, accountId)]);
    if (validateNeedsApiKey(current.settings)) assertMayValidate(await deps.apiKeys.authenticate(requireValidatingKey(credential())), tenantId);
    return { tokenHash: valid.tokenHash, session: valid.session, tenant: current, subscription: plan };
  })();
}
