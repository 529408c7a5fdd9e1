// identity.v1.AccountService: translate proto ⇄ domain, nothing else.
import type { ConnectRouter } from "@connectrpc/connect";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import type { App } from "./app.ts";
import { requireSession } from "./auth.ts";
import { accountToProto } from "./convert.ts";

export function registerAccountService(router: ConnectRouter, app: App): void {
  router.service(AccountService, {
    async getAccount(_req, ctx) {
      const { session } = await requireSession(app, ctx);
      return { account: accountToProto(await app.accounts.get(session.tenantId, session.accountId)) };
    },
  });
}
