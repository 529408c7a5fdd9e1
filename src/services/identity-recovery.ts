// IdentityService verification resend, password reset and change, and the
// caller's identities. Proto ⇄ domain only; the rules live in src/domain/recovery.ts.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requestMeta, requireSession, tenantOf } from "./call-context.ts";
import { identityToProto } from "./convert.ts";

export type RecoveryRpcs =
  | "resendVerification"
  | "startPasswordReset"
  | "checkPasswordResetCode"
  | "completePasswordReset"
  | "changePassword"
  | "listIdentities"
  | "removeIdentity";

export function recoveryHandlers(app: App): Pick<ServiceImpl<typeof IdentityService>, RecoveryRpcs> {
  return {
    async resendVerification(req, ctx) {
      await app.recovery.resendVerification({ tenantId: tenantOf(ctx), email: req.email, locale: req.locale, meta: requestMeta(ctx) });
      return {};
    },
    async startPasswordReset(req, ctx) {
      await app.recovery.startPasswordReset({ tenantId: tenantOf(ctx), email: req.email, locale: req.locale, meta: requestMeta(ctx) });
      return {};
    },
    async checkPasswordResetCode(req, ctx) {
      const { expiresAt } = await app.recovery.checkPasswordResetCode({ code: req.code, tenantId: tenantOf(ctx), meta: requestMeta(ctx) });
      return { expireTime: timestampFromMs(expiresAt) };
    },
    async completePasswordReset(req, ctx) {
      await app.recovery.completePasswordReset({ code: req.code, newPassword: req.newPassword, tenantId: tenantOf(ctx), meta: requestMeta(ctx) });
      return {};
    },
    async changePassword(req, ctx) {
      const { principal } = requireSession(ctx);
      await selfAudited(app, ctx, principal, "identity.password_change", "", async () => {
        await app.secondFactors.requireStepUp(principal);
        return app.recovery.changePassword({ principal, currentPassword: req.currentPassword, newPassword: req.newPassword, meta: requestMeta(ctx) });
      });
      return {};
    },
    async listIdentities(_req, ctx) {
      const { principal } = requireSession(ctx);
      const identities = await app.recovery.listIdentities(principal);
      return {
        identities: identities.map(identityToProto),
      };
    },
    async removeIdentity(req, ctx) {
      const { principal } = requireSession(ctx);
      await app.recovery.removeIdentity({ principal, identityId: req.identityId });
      return {};
    },
  };
}
