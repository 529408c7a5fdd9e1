// AdminService: a person's consents and data export as an admin reads them,
// proto ⇄ domain only — the very exporter the person uses. A stated reason is
// required and every call is audited, refusals included.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import type { HandlerContext } from "@connectrpc/connect";
import { assertMayManageAccount } from "../domain/authorization.ts";
import { isId } from "../domain/ids.ts";
import { Role, type Account } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";
import { consentToProto } from "./convert.ts";

const USERS_READ = { permission: "users.read", minRole: Role.ADMIN } as const;

/**
 * Authorizes the caller, then — inside an audited action named `action`, so the
 * event (with the reason) is written before anything of the person leaves, and
 * a refusal is recorded too — reads the account as GetUser does (reason
 * required, not_found outside the tenant) and checks the caller may manage it.
 */
async function readUser<T>(
  app: App,
  ctx: HandlerContext,
  req: { accountId: string; reason: string },
  action: string,
  read: (account: Account) => Promise<T>,
): Promise<T> {
  const { principal, tenantId } = await authorize(app, ctx, USERS_READ);
  const target = isId(req.accountId) ? `account:${req.accountId}` : "";
  return audited(app, ctx, principal, { tenantId, action, target, reason: req.reason }, async () => {
    const account = await app.users.get({ principal, tenantId, accountId: req.accountId, reason: req.reason });
    assertMayManageAccount(principal, account);
    return read(account);
  });
}

export type PrivacyRpcs = "listUserConsents" | "exportUserData";

export function privacyHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, PrivacyRpcs> {
  return {
    async listUserConsents(req, ctx) {
      const { current, history } = await readUser(app, ctx, req, "user.list_consents", async (account) => {
        const [current, history] = await Promise.all([app.consents.current(account.tenantId, account.id), app.consents.history(account.tenantId, account.id)]);
        return { current, history };
      });
      return { consents: current.map(consentToProto), history: history.map(consentToProto) };
    },

    async *exportUserData(req, ctx) {
      const account = await readUser(app, ctx, req, "user.export", async (account) => account);
      for await (const part of app.dataExport.parts(account.tenantId, account.id)) yield { part };
    },
  };
}
