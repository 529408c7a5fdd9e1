// Blocking hooks: per tenant, an HTTP endpoint asked synchronously before a
// sign-up and/or before a session is issued (Supabase's "before user created",
// Zitadel's actions). It receives the point, the tenant, the identity kind and
// the request's metadata — signed like webhooks (Standard Webhooks headers) —
// and answers `{"decision":"allow"}` or `{"decision":"deny","reason":"…",
// "message":"…"}`; a denial reaches the client as PermissionDenied with that
// reason and message. A hook that fails or does not answer within its timeout
// follows the tenant's choice: fail open (let the request through) or closed
// (refuse it: Unavailable HOOK_UNAVAILABLE). Settings are cached per tenant and
// dropped everywhere when they change.
import type { Keyring } from "../crypto/keyring.ts";
import { newWebhookSecret, signedHeaders } from "../crypto/webhook-signature.ts";
import { assertNoViolations, DomainError, type FieldViolation } from "./errors.ts";
import { identityKindName } from "./events.ts";
import { newId } from "./ids.ts";
import { createInvalidatedCache, listenForInvalidations } from "./invalidated-cache.ts";
import type { BlockingHookStore, HookCaller, HookPoint, StoredBlockingHook } from "./ports/hooks.ts";
import type { InvalidationBus } from "./ports/invalidation.ts";
import type { Random } from "./ports/random.ts";
import type { Tenants } from "./tenants.ts";
import { AuthMethod, IdentityKind } from "./types.ts";
import { checkWebhookUrl, type EndpointPolicy } from "./webhooks.ts";

export const HOOK_POINTS: readonly HookPoint[] = ["before_sign_up", "before_session"];
export const HOOK_TIMEOUT_DEFAULT_MS = 2000;
export const HOOK_TIMEOUT_MIN_MS = 100;
export const HOOK_TIMEOUT_MAX_MS = 5000;
const REASON = /^[A-Z][A-Z0-9_]{0,63}$/;
/** A denial whose reason is missing or not UPPER_SNAKE; otherwise clients receive the hook's own reason. */
export const HOOK_DENIED = "HOOK_DENIED";
const MESSAGE_MAX = 200;

/** What a hook is told about the request: no address, no password, no token. */
export interface HookRequest {
  tenantId: string;
  /** IdentityKind of the identity signing up or in. */
  identityKind: number;
  /** The account, before a session (empty before a sign-up: there is none yet). */
  accountId?: string;
  meta: { ip: string; userAgent: string };
}

export interface BlockingHooks {
  /** Sets (or replaces) the tenant's hook at `point`, with a new secret returned once. */
  set(input: { tenantId: string; point: string; url: string; timeoutMs: number; failOpen: boolean }): Promise<{ hook: StoredBlockingHook; secret: string }>;
  list(tenantId: string): Promise<StoredBlockingHook[]>;
  /** not_found HOOK_NOT_FOUND when the tenant has none there. */
  delete(tenantId: string, point: string): Promise<void>;
  /**
   * Asks the tenant's hook at `point`, if any: returns when it allows (or fails
   * open); throws permission_denied with its reason when it denies, unavailable
   * HOOK_UNAVAILABLE when it fails closed.
   */
  check(point: HookPoint, request: HookRequest): Promise<void>;
  /** Starts listening for changes made by other instances. */
  listen(): Promise<void>;
}

/** The identity kind a sign-in proved, from its first authentication method (src/domain/types.ts). */
export function identityKindOfMethods(methods: ReadonlyArray<{ method: string }>): number {
  const first = methods[0]?.method ?? "";
  if (first === AuthMethod.PHONE_CODE) return IdentityKind.PHONE;
  if (first === AuthMethod.GUEST) return IdentityKind.GUEST;
  if (first === "oidc") return IdentityKind.OIDC;
  return IdentityKind.EMAIL; // password, email_link
}

export const hookSecretContext = (tenantId: string, point: HookPoint) => `hook:${tenantId}:${point}`;

function checkPoint(field: string, raw: string, violations: FieldViolation[]): HookPoint {
  if (!(HOOK_POINTS as readonly string[]).includes(raw)) violations.push({ field, description: `must be one of ${HOOK_POINTS.join(", ")}` });
  return raw as HookPoint;
}

/** A hook's answer: allow, or deny with a reason and message fit for the client. */
export function parseHookAnswer(status: number, body: string): { allow: true } | { allow: false; reason: string; message: string } | undefined {
  if (status < 200 || status >= 300) return undefined;
  let answer: { decision?: unknown; reason?: unknown; message?: unknown };
  try {
    answer = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (answer?.decision === "allow") return { allow: true };
  if (answer?.decision !== "deny") return undefined;
  const reason = typeof answer.reason === "string" && REASON.test(answer.reason) ? answer.reason : HOOK_DENIED;
  const message =
    typeof answer.message === "string" && answer.message.trim() !== ""
      ? answer.message
          .replace(/[\p{Cc}\p{Cf}]/gu, " ")
          .trim()
          .slice(0, MESSAGE_MAX)
      : "refused by the application's policy";
  return { allow: false, reason, message };
}

export function createBlockingHooks(deps: {
  store: BlockingHookStore;
  caller: HookCaller;
  keyring: Pick<Keyring, "sealSecret" | "openSecret">;
  tenants: Pick<Tenants, "get">;
  invalidation?: InvalidationBus;
  /** http:// hooks (development mode only) and private addresses (development mode or WEBHOOK_ALLOW_PRIVATE_NETWORKS). */
  endpoints: EndpointPolicy;
  now: () => number;
  random?: Random;
  /** A hook that failed (codes only), for the log. */
  onFailure?: (failure: { tenantId: string; point: HookPoint; code: string; failOpen: boolean }) => void;
}): BlockingHooks {
  const { store, now } = deps;
  // tenant id → its hooks; hot on sign-up and sign-in, so read from the store at most every 10 s.
  const cache = createInvalidatedCache<StoredBlockingHook[]>({ maxEntries: 10_000, maxAgeMs: 10_000 }, now);

  async function hooksOf(tenantId: string): Promise<StoredBlockingHook[]> {
    const cached = cache.get(tenantId);
    if (cached) return cached;
    const epoch = cache.epoch();
    const hooks = await store.list(tenantId);
    cache.set(tenantId, hooks, epoch);
    return hooks;
  }

  async function changed(tenantId: string): Promise<void> {
    cache.delete(tenantId);
    await deps.invalidation?.publish([{ kind: "tenant", tenantId }]);
  }

  return {
    async set({ tenantId, point: rawPoint, url, timeoutMs, failOpen }) {
      const violations: FieldViolation[] = [];
      const point = checkPoint("point", rawPoint, violations);
      const checkedUrl = checkWebhookUrl(url, deps.endpoints, violations);
      const timeout = timeoutMs === 0 ? HOOK_TIMEOUT_DEFAULT_MS : timeoutMs;
      if (timeout < HOOK_TIMEOUT_MIN_MS || timeout > HOOK_TIMEOUT_MAX_MS)
        violations.push({
          field: "timeout_ms",
          description: `must be between ${HOOK_TIMEOUT_MIN_MS} and ${HOOK_TIMEOUT_MAX_MS} (0: ${HOOK_TIMEOUT_DEFAULT_MS})`,
        });
      assertNoViolations(violations);
      await deps.tenants.get(tenantId); // not_found TENANT_NOT_FOUND
      const at = now();
      const existing = (await store.list(tenantId)).find((h) => h.point === point);
      const secret = newWebhookSecret();
      const hook: StoredBlockingHook = {
        tenantId,
        point,
        url: checkedUrl,
        secretSealed: deps.keyring.sealSecret(hookSecretContext(tenantId, point), Buffer.from(secret, "utf8")),
        timeoutMs: timeout,
        failOpen,
        createdAt: existing?.createdAt ?? at,
        updatedAt: at,
      };
      await store.put(hook);
      await changed(tenantId);
      return { hook, secret };
    },

    list: (tenantId) => store.list(tenantId),

    async delete(tenantId, rawPoint) {
      const violations: FieldViolation[] = [];
      const point = checkPoint("point", rawPoint, violations);
      assertNoViolations(violations);
      if (!(await store.delete(tenantId, point))) throw new DomainError("not_found", "HOOK_NOT_FOUND", "the tenant has no hook there");
      await changed(tenantId);
    },

    async check(point, request) {
      const hook = (await hooksOf(request.tenantId)).find((h) => h.point === point);
      if (!hook) return;
      const at = now();
      const id = newId(at, deps.random);
      const body = JSON.stringify({
        type: point,
        timestamp: new Date(at).toISOString(),
        data: {
          tenant_id: request.tenantId,
          identity_kind: identityKindName(request.identityKind),
          ...(request.accountId ? { account_id: request.accountId } : {}),
          ip: request.meta.ip,
          user_agent: request.meta.userAgent,
        },
      });
      let code: string;
      try {
        const secret = deps.keyring.openSecret(hookSecretContext(hook.tenantId, hook.point), hook.secretSealed).toString("utf8");
        const response = await deps.caller.post({ url: hook.url, headers: signedHeaders(secret, id, at, body), body, timeoutMs: hook.timeoutMs });
        const answer = parseHookAnswer(response.status, response.body);
        if (answer?.allow) return;
        if (answer) throw new DomainError("permission_denied", answer.reason, answer.message);
        code = response.status >= 200 && response.status < 300 ? "BAD_ANSWER" : `HTTP_${response.status}`;
      } catch (error) {
        if (error instanceof DomainError) throw error;
        const e = error as { name?: string; code?: unknown; cause?: { code?: unknown } };
        const errorCode = e?.cause?.code ?? e?.code;
        code =
          e?.name === "TimeoutError" || e?.name === "AbortError"
            ? "TIMEOUT"
            : typeof errorCode === "string" && /^[A-Z][A-Z0-9_]{1,31}$/.test(errorCode)
              ? errorCode
              : "NETWORK_ERROR";
      }
      deps.onFailure?.({ tenantId: hook.tenantId, point, code, failOpen: hook.failOpen });
      if (hook.failOpen) return;
      throw new DomainError("unavailable", "HOOK_UNAVAILABLE", "the application's hook did not answer; retry later", { retryAfterMs: 1000 });
    },

    listen: async () => {
      if (!deps.invalidation) return;
      await listenForInvalidations(deps.invalidation, cache, (message) => {
        if (message.kind === "tenant") cache.delete(message.tenantId);
      });
    },
  };
}
