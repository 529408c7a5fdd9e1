// IdentityService email change for the signed-in caller: start, check the
// code, confirm. Proto ⇄ domain only; the rules live in src/domain/email-change.ts.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requestMeta, requireSession } from "./call-context.ts";

export type EmailChangeRpcs = "startEmailChange" | "checkEmailChangeCode" | "confirmEmailChange";

export function emailChangeHandlers(app: App): Pick<ServiceImpl<typeof IdentityService>, EmailChangeRpcs> {
  return {
    async startEmailChange(req, ctx) {
      const { principal } = requireSession(ctx);
      // Step-up: AAL2 when the account has a second factor, else a sign-in within 10 minutes.
      await app.secondFactors.requireStepUp(principal, { recent: true });
      await app.emailChange.start({ principal, meta: requestMeta(ctx), newEmail: req.newEmail });
      return {};
    },
    async checkEmailChangeCode(req, ctx) {
      const { principal } = requireSession(ctx);
      const { expiresAt } = await app.emailChange.checkCode({ principal, meta: requestMeta(ctx), code: req.code });
      return { expireTime: timestampFromMs(expiresAt) };
    },
    async confirmEmailChange(req, ctx) {
      const { principal } = requireSession(ctx);
      await selfAudited(app, ctx, principal, "identity.email_change", "", () => app.emailChange.confirm({ principal, meta: requestMeta(ctx), code: req.code }));
      return {};
    },
  };
}
