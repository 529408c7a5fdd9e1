// AccountService: the person's own second factors (StartTotpEnrollment,
// ConfirmTotpEnrollment, ListSecondFactors, RemoveSecondFactor,
// RegenerateRecoveryCodes). Proto ⇄ domain only; the rules live in
// src/domain/second-factors.ts. Every change is audited (never a secret).
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { type SecondFactor as SecondFactorMessage, SecondFactorSchema } from "../../gen/identity/v1/common_pb.js";
import type { SecondFactorView } from "../domain/second-factors.ts";
import type { App } from "./app.ts";
import { selfAudited } from "./authorize.ts";
import { requestMeta, requireSession } from "./call-context.ts";

export type AccountSecondFactorRpcs =
  | "startTotpEnrollment"
  | "confirmTotpEnrollment"
  | "listSecondFactors"
  | "removeSecondFactor"
  | "regenerateRecoveryCodes"
  | "startPasskeyRegistration"
  | "finishPasskeyRegistration";

export function secondFactorToProto(factor: SecondFactorView): SecondFactorMessage {
  return create(SecondFactorSchema, {
    id: factor.id,
    kind: factor.kind,
    createTime: timestampFromMs(factor.createdAt),
    ...(factor.lastUsedAt === null ? {} : { lastUseTime: timestampFromMs(factor.lastUsedAt) }),
  });
}

export function accountSecondFactorHandlers(app: App): Pick<ServiceImpl<typeof AccountService>, AccountSecondFactorRpcs> {
  return {
    async startTotpEnrollment(_req, ctx) {
      const { principal } = requireSession(ctx);
      return selfAudited(app, ctx, principal, "account.second_factor.enrollment_start", "kind: totp", () => app.secondFactors.startTotp(principal));
    },

    async confirmTotpEnrollment(req, ctx) {
      const { principal } = requireSession(ctx);
      const { factor, recoveryCodes } = await selfAudited(app, ctx, principal, "account.second_factor.enroll", "kind: totp", () =>
        app.secondFactors.confirmTotp(principal, req.code, requestMeta(ctx)),
      );
      return { factor: secondFactorToProto(factor), recoveryCodes };
    },

    async listSecondFactors(_req, ctx) {
      const { session } = requireSession(ctx);
      const { factors, recoveryCodesRemaining } = await app.secondFactors.list(session.accountId);
      return { factors: factors.map(secondFactorToProto), recoveryCodesRemaining };
    },

    async removeSecondFactor(req, ctx) {
      const { principal } = requireSession(ctx);
      await selfAudited(app, ctx, principal, "account.second_factor.remove", `factor: ${req.factorId.slice(0, 64)}`, () =>
        app.secondFactors.remove(principal, req.factorId),
      );
      return {};
    },

    async startPasskeyRegistration(_req, ctx) {
      const { principal } = requireSession(ctx);
      return { optionsJson: await app.passkeys.startRegistration(principal) };
    },

    async finishPasskeyRegistration(req, ctx) {
      const { principal } = requireSession(ctx);
      const { factor, recoveryCodes } = await selfAudited(app, ctx, principal, "account.second_factor.enroll", "kind: passkey", () =>
        app.passkeys.finishRegistration(principal, req.responseJson),
      );
      return { factor: secondFactorToProto(factor), recoveryCodes };
    },

    async regenerateRecoveryCodes(_req, ctx) {
      const { principal } = requireSession(ctx);
      const recoveryCodes = await selfAudited(app, ctx, principal, "account.second_factor.recovery_codes_regenerate", "", () =>
        app.secondFactors.regenerateRecoveryCodes(principal),
      );
      return { recoveryCodes };
    },
  };
}
