// identity.v1.AccountService: translate proto ⇄ domain, nothing else.
import type { ConnectRouter } from "@connectrpc/connect";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { invalidArgument } from "../domain/errors.ts";
import { requestMeta } from "../server/request-context.ts";
import { accountPrivacyHandlers } from "./account-privacy.ts";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requireSession } from "./auth.ts";
import { accountToProto } from "./convert.ts";

export function registerAccountService(router: ConnectRouter, app: App): void {
  router.service(AccountService, {
    ...accountPrivacyHandlers(app),
    async getAccount(_req, ctx) {
      const { session } = await requireSession(app, ctx);
      return { account: accountToProto(await app.accounts.get(session.tenantId, session.accountId)) };
    },
    async updateAccount(req, ctx) {
      const { session, principal } = await requireSession(app, ctx);
      const paths = req.updateMask?.paths ?? [];
      if (paths.length > 0 && !req.account) throw invalidArgument("account", "is required with an update_mask");
      // Rectification by the person is audited like an admin's (which fields, never their values).
      const account = await selfAudited(app, ctx, principal, "account.update", `fields: ${paths.join(", ")}`, () => app.profiles.update(session.tenantId, session.accountId, paths, {
        displayName: req.account?.displayName ?? "",
        pronouns: req.account?.pronouns ?? "",
        locale: req.account?.locale ?? "",
        customAttributes: req.account?.customAttributes,
      }));
      return { account: accountToProto(account) };
    },
    async addPushToken(req, ctx) {
      const { session, principal } = await requireSession(app, ctx);
      await selfAudited(app, ctx, principal, "account.push_token.add", "", () => app.profiles.addPushToken(session.tenantId, session.accountId, req.pushToken));
      return {};
    },
    async removePushToken(req, ctx) {
      const { session, principal } = await requireSession(app, ctx);
      await selfAudited(app, ctx, principal, "account.push_token.remove", "", () => app.profiles.removePushToken(session.tenantId, session.accountId, req.deviceId));
      return {};
    },
    async deleteAccount(req, ctx) {
      const { principal } = await requireSession(app, ctx);
      await app.erasure.eraseOwn({ principal, password: req.password, meta: requestMeta(ctx) });
      return {};
    },
  });
}
