// identity.v1.IdentityService: translate proto ⇄ domain, nothing else.
import type { ConnectRouter } from "@connectrpc/connect";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { requestMeta, tenantOf } from "../server/request-context.ts";
import type { App } from "./app.ts";

export function registerIdentityService(router: ConnectRouter, app: App): void {
  router.service(IdentityService, {
    async signUp(req, ctx) {
      await app.identity.signUp({ tenantId: tenantOf(ctx), email: req.email, password: req.password, locale: req.locale, meta: requestMeta(ctx) });
      return {};
    },
    async verifyIdentity(req, ctx) {
      const { token, session } = await app.identity.verifyIdentity({ token: req.token, meta: requestMeta(ctx) });
      return { sessionToken: token, accountId: session.accountId, expireTime: timestampFromMs(session.expiresAt) };
    },
  });
}
