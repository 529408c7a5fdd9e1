// AdminService: user management, proto ⇄ domain only (rules: domain/admin-users.ts).
// Every RPC authorizes before it looks anything up, then runs inside audited():
// each outcome after authorization is recorded with the stated reason.
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import type { HandlerContext } from "@connectrpc/connect";
import type { UserTarget } from "../domain/admin-users.ts";
import type { Need } from "../domain/authorization.ts";
import { isId } from "../domain/ids.ts";
import { Role } from "../domain/types.ts";
import { timestampToEpochMs } from "./admin-audit.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";
import { requestMeta } from "./call-context.ts";
import { identityToProto, accountToProto } from "./convert.ts";

const USERS_READ: Need = { permission: "users.read", minRole: Role.ADMIN };
const USERS_WRITE: Need = { permission: "users.write", minRole: Role.ADMIN };

/** How the audit trail names the account a request names; "" when it names none (a malformed id). */
const targetOf = (accountId: string) => (isId(accountId) ? `account:${accountId}` : "");

export type UserRpcs =
  | "createUser"
  | "getUser"
  | "listUsers"
  | "updateUser"
  | "setUserRole"
  | "activateUser"
  | "deactivateUser"
  | "deleteUser"
  | "sendPasswordReset"
  | "revokeUserSessions";

/** authorize(), then the action on the named account, audited as `action`. */
export function accountAction(app: App) {
  return async function onAccount<T>(
    ctx: HandlerContext,
    need: Need,
    action: string,
    req: { accountId: string; reason: string },
    run: (target: UserTarget) => Promise<T>,
    /** The audited outcome of a success, when not "success". */
    outcomeOf?: (result: T) => string,
  ): Promise<T> {
    const { principal, tenantId } = await authorize(app, ctx, need);
    return audited(
      app,
      ctx,
      principal,
      { tenantId, action, target: targetOf(req.accountId), reason: req.reason },
      () => run({ principal, tenantId, accountId: req.accountId }),
      undefined,
      outcomeOf,
    );
  };
}

export function userHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, UserRpcs> {
  const onAccount = accountAction(app);

  return {
    async createUser(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, USERS_WRITE);
      const account = await audited(
        app,
        ctx,
        principal,
        { tenantId, action: req.sendWelcome ? "user.invite" : "user.create", target: "" },
        () =>
          app.users.create({
            principal,
            tenantId,
            email: req.email,
            password: req.password,
            role: req.role,
            sendWelcome: req.sendWelcome,
            displayName: req.displayName,
            locale: req.locale,
          }),
        (created) => ({ tenantId, target: `account:${created.id}` }),
      );
      return { account: accountToProto(account) };
    },

    async getUser(req, ctx) {
      const [account, identities] = await onAccount(ctx, USERS_READ, "user.get", req, (target) =>
        Promise.all([app.users.get({ ...target, reason: req.reason }), app.users.identities(target)]),
      );
      return { account: accountToProto(account), identities: identities.map(identityToProto) };
    },

    async listUsers(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, USERS_READ);
      const page = await audited(app, ctx, principal, { tenantId, action: "user.list", target: "", reason: req.reason }, () =>
        app.users.list({
          tenantId,
          state: req.state,
          role: req.role,
          plan: req.plan,
          subscriptionStatus: req.subscriptionStatus,
          createdAtOrAfter: timestampToEpochMs("created_after", req.createdAfter),
          createdBefore: timestampToEpochMs("created_before", req.createdBefore),
          email: req.email,
          pageSize: req.pageSize,
          pageToken: req.pageToken,
        }),
      );
      return { users: page.users.map(accountToProto), nextPageToken: page.nextPageToken };
    },

    async updateUser(req, ctx) {
      const input = req.account;
      const account = await onAccount(ctx, USERS_WRITE, "user.update", { accountId: input?.id ?? "", reason: req.reason }, (target) =>
        app.users.update({ ...target, field: "account.id" }, req.updateMask?.paths ?? [], {
          displayName: input?.displayName ?? "",
          pronouns: input?.pronouns ?? "",
          locale: input?.locale ?? "",
          customAttributes: input?.customAttributes,
        }),
      );
      return { account: accountToProto(account) };
    },

    async setUserRole(req, ctx) {
      const account = await onAccount(ctx, USERS_WRITE, "user.set_role", req, (target) => app.users.setRole(target, req.role));
      return { account: accountToProto(account) };
    },

    async activateUser(req, ctx) {
      const account = await onAccount(ctx, USERS_WRITE, "user.activate", req, (target) => app.users.activate(target));
      return { account: accountToProto(account) };
    },

    async deactivateUser(req, ctx) {
      const account = await onAccount(ctx, USERS_WRITE, "user.deactivate", req, (target) => app.users.deactivate(target));
      return { account: accountToProto(account) };
    },

    async deleteUser(req, ctx) {
      await onAccount(ctx, USERS_WRITE, "user.delete", req, (target) => app.users.delete({ ...target, reason: req.reason, meta: requestMeta(ctx) }));
      return {};
    },

    async sendPasswordReset(req, ctx) {
      await onAccount(ctx, USERS_WRITE, "user.send_password_reset", req, (target) => app.users.sendPasswordReset({ ...target, meta: requestMeta(ctx) }));
      return {};
    },

    async revokeUserSessions(req, ctx) {
      const revokedCount = await onAccount(ctx, USERS_WRITE, "user.revoke_sessions", req, (target) => app.users.revokeSessions(target));
      return { revokedCount };
    },
  };
}
