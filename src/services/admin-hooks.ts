// AdminService: blocking hooks (SetBlockingHook, ListBlockingHooks,
// DeleteBlockingHook). Proto ⇄ domain only; the rules live in
// src/domain/hooks.ts. Callers: an ADMIN of the tenant or a platform super
// admin; no API key. Audited in the tenant ("hook.*", the point as target).
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { BlockingHookSchema, type BlockingHook as BlockingHookProto } from "../../gen/identity/v1/webhooks_pb.js";
import { HOOK_POINTS } from "../domain/hooks.ts";
import type { StoredBlockingHook } from "../domain/ports/hooks.ts";
import { Role } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

const HOOK_ADMIN = { permission: null, minRole: Role.ADMIN } as const;

function hookToProto(hook: StoredBlockingHook): BlockingHookProto {
  return create(BlockingHookSchema, {
    tenantId: hook.tenantId,
    point: hook.point,
    url: hook.url,
    timeoutMs: hook.timeoutMs,
    failOpen: hook.failOpen,
    createTime: timestampFromMs(hook.createdAt),
    updateTime: timestampFromMs(hook.updatedAt),
  });
}

/** Only a known point becomes the audit target: whatever else was sent is not recorded. */
const target = (point: string) => ((HOOK_POINTS as readonly string[]).includes(point) ? `hook:${point}` : "");

export type HookRpcs = "setBlockingHook" | "listBlockingHooks" | "deleteBlockingHook";

export function hookHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, HookRpcs> {
  return {
    async setBlockingHook(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...HOOK_ADMIN, tenantId: req.tenantId });
      const { hook, secret } = await audited(app, ctx, principal, { tenantId, action: "hook.set", target: target(req.point) }, () =>
        app.hooks.set({ tenantId, point: req.point, url: req.url, timeoutMs: req.timeoutMs, failOpen: req.failOpen }),
      );
      return { hook: hookToProto(hook), secret };
    },

    async listBlockingHooks(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...HOOK_ADMIN, tenantId: req.tenantId });
      const hooks = await audited(app, ctx, principal, { tenantId, action: "hook.list", target: "" }, () => app.hooks.list(tenantId));
      return { hooks: hooks.map(hookToProto) };
    },

    async deleteBlockingHook(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...HOOK_ADMIN, tenantId: req.tenantId });
      await audited(app, ctx, principal, { tenantId, action: "hook.delete", target: target(req.point) }, () => app.hooks.delete(tenantId, req.point));
      return {};
    },
  };
}
