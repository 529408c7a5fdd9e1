// IdentityService email change for the signed-in caller: start, check the
// code, confirm. Proto ⇄ domain only; the rules live in src/domain/email-change.ts.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { requestMeta } from "../server/request-context.ts";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requireSession } from "./auth.ts";
import type { IdentityHandlers } from "./identity-service.ts";

export function emailChangeHandlers(app: App): IdentityHandlers {
  return {
    async startEmailChange(req, ctx) {
      const { principal } = await requireSession(app, ctx);
      await app.emailChange.start({ principal, meta: requestMeta(ctx), newEmail: req.newEmail });
      return {};
    },
    async checkEmailChangeCode(req, ctx) {
      const { principal } = await requireSession(app, ctx);
      const { expiresAt } = await app.emailChange.checkCode({ principal, meta: requestMeta(ctx), code: req.code });
      return { expireTime: timestampFromMs(expiresAt) };
    },
    async confirmEmailChange(req, ctx) {
      const { principal } = await requireSession(app, ctx);
      await selfAudited(app, ctx, principal, "identity.email_change", "", () => app.emailChange.confirm({ principal, meta: requestMeta(ctx), code: req.code }));
      return {};
    },
  };
}
