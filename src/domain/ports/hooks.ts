// Blocking hooks (src/domain/hooks.ts): a tenant's HTTP endpoints asked before
// a sign-up or a session, their settings in the database (migration 0011),
// and the HTTP call itself (src/delivery/hook-caller.ts). See ./errors.ts for
// the errors the store's methods may throw.

/** Where a hook is asked. */
export type HookPoint = "before_sign_up" | "before_session";

export interface StoredBlockingHook {
  tenantId: string;
  point: HookPoint;
  url: string;
  /** The signing secret sealed under the key-encryption key. */
  secretSealed: string;
  timeoutMs: number;
  /** When the hook fails or times out: true lets the request through, false refuses it. */
  failOpen: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface BlockingHookStore {
  /** The tenant's hooks (at most one per point). */
  list(tenantId: string): Promise<StoredBlockingHook[]>;
  /** Creates or replaces the tenant's hook at its point. */
  put(hook: StoredBlockingHook): Promise<void>;
  /** False when the tenant had no hook there. */
  delete(tenantId: string, point: HookPoint): Promise<boolean>;
}

/** One POST to a hook; never throws for an HTTP status. */
export interface HookCaller {
  /** Rejects on a network failure or when `timeoutMs` passes (the caller decides what that means). */
  post(input: { url: string; headers: Record<string, string>; body: string; timeoutMs: number }): Promise<{ status: number; body: string }>;
}
