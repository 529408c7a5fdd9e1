// identity.v1.AccountService: translate proto ⇄ domain, nothing else. Every
// RPC acts for the person whose session calls it.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { invalidArgument } from "../domain/errors.ts";
import type { AccessPolicy } from "./access.ts";
import { accountPrivacyHandlers } from "./account-privacy.ts";
import { accountSecondFactorHandlers } from "./account-second-factors.ts";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requestMeta, requireSession } from "./call-context.ts";
import { accountToProto, checkAccountReadMask, pickAccountFields } from "./convert.ts";

export const accountAccess: AccessPolicy<typeof AccountService> = "session";

export function accountService(app: App) {
  return {
    ...accountPrivacyHandlers(app),
    ...accountSecondFactorHandlers(app),
    async getAccount(req, ctx) {
      const { session } = requireSession(ctx);
      const paths = req.readMask?.paths ?? [];
      checkAccountReadMask("read_mask", paths);
      const account = accountToProto(await app.accounts.get(session.tenantId, session.accountId));
      return { account: paths.length > 0 ? pickAccountFields(account, paths) : account };
    },
    async updateAccount(req, ctx) {
      const { session, principal } = requireSession(ctx);
      const paths = req.updateMask?.paths ?? [];
      if (paths.length > 0 && !req.account) throw invalidArgument("account", "is required with an update_mask");
      // Rectification by the person is audited like an admin's (which fields, never their values).
      const account = await selfAudited(app, ctx, principal, "account.update", `fields: ${paths.join(", ")}`, () =>
        app.profiles.update(session.tenantId, session.accountId, paths, {
          displayName: req.account?.displayName ?? "",
          pronouns: req.account?.pronouns ?? "",
          locale: req.account?.locale ?? "",
          customAttributes: req.account?.customAttributes,
        }),
      );
      return { account: accountToProto(account) };
    },
    async addPushToken(req, ctx) {
      const { session, principal } = requireSession(ctx);
      await selfAudited(app, ctx, principal, "account.push_token.add", "", () => app.profiles.addPushToken(session.tenantId, session.accountId, req.pushToken));
      return {};
    },
    async removePushToken(req, ctx) {
      const { session, principal } = requireSession(ctx);
      await selfAudited(app, ctx, principal, "account.push_token.remove", "", () =>
        app.profiles.removePushToken(session.tenantId, session.accountId, req.deviceId),
      );
      return {};
    },
    async deleteAccount(req, ctx) {
      const { principal } = requireSession(ctx);
      await app.secondFactors.requireStepUp(principal);
      await app.erasure.eraseOwn({ principal, password: req.password, meta: requestMeta(ctx) });
      return {};
    },
  } satisfies ServiceImpl<typeof AccountService>;
}
