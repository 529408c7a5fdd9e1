// identity.v1.IdentityService: translate proto ⇄ domain, nothing else. Each
// flow's handlers live in their own module and are composed here.
import type { ConnectRouter } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { requestMeta, tenantOf } from "../server/request-context.ts";
import type { App } from "./app.ts";
import { emailChangeHandlers } from "./identity-email-change.ts";
import { recoveryHandlers } from "./identity-recovery.ts";

export type IdentityHandlers = Partial<ServiceImpl<typeof IdentityService>>;

function signUpHandlers(app: App): IdentityHandlers {
  return {
    async signUp(req, ctx) {
      await app.identity.signUp({ tenantId: tenantOf(ctx), email: req.email, password: req.password, locale: req.locale, meta: requestMeta(ctx), consents: req.consents });
      return {};
    },
    async verifyIdentity(req, ctx) {
      const { token, session } = await app.identity.verifyIdentity({ token: req.token, meta: requestMeta(ctx) });
      return { sessionToken: token, accountId: session.accountId, expireTime: timestampFromMs(session.expiresAt) };
    },
  };
}

export function registerIdentityService(router: ConnectRouter, app: App): void {
  router.service(IdentityService, {
    ...signUpHandlers(app),
    ...emailChangeHandlers(app),
    ...recoveryHandlers(app),
  });
}
