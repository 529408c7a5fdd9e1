// AdminService: customer service (admin-assisted recovery), proto ⇄ domain only
// (rules: src/domain/assisted-recovery.ts). A person's session only: what an
// admin does after identifying someone on the phone is never a service's call.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import type { Need } from "../domain/authorization.ts";
import { Role } from "../domain/types.ts";
import { accountAction } from "./admin-users.ts";
import type { App } from "./app.ts";
import { accountToProto } from "./convert.ts";

const ASSISTED_RECOVERY: Need = { permission: null, minRole: Role.ADMIN };

export type RecoveryRpcs = "changeUserEmail" | "issueTemporaryPassword" | "resetSecondFactors";

export function recoveryHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, RecoveryRpcs> {
  const onAccount = accountAction(app);
  return {
    async changeUserEmail(req, ctx) {
      const account = await onAccount(ctx, ASSISTED_RECOVERY, "user.change_email", req, (target) =>
        app.assistedRecovery.changeEmail({ ...target, reason: req.reason, newEmail: req.newEmail, attested: req.attestVerified }),
      );
      return { account: accountToProto(account) };
    },

    async issueTemporaryPassword(req, ctx) {
      const issued = await onAccount(ctx, ASSISTED_RECOVERY, "user.issue_temporary_password", req, (target) =>
        app.assistedRecovery.issueTemporaryPassword({ ...target, reason: req.reason }),
      );
      return { temporaryPassword: issued.password, expireTime: timestampFromMs(issued.expiresAt) };
    },

    async resetSecondFactors(req, ctx) {
      const { removedFactors } = await onAccount(ctx, ASSISTED_RECOVERY, "user.reset_second_factors", req, (target) =>
        app.assistedRecovery.resetSecondFactors({ ...target, reason: req.reason }),
      );
      return { removedFactorCount: removedFactors };
    },
  };
}
