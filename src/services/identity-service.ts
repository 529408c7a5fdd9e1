// identity.v1.IdentityService: translate proto ⇄ domain, nothing else. Sign-up
// and verification are here; email change and recovery in their own modules,
// composed into one complete implementation.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { JsonObject } from "@bufbuild/protobuf";
import type { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import type { AccessPolicy } from "./access.ts";
import type { App } from "./app.ts";
import { bearerToken, requestMeta, requireSession, tenantOf } from "./call-context.ts";
import { isApiKeySecret } from "../domain/api-keys.ts";
import { permissionDenied } from "../domain/errors.ts";
import { emailChangeHandlers } from "./identity-email-change.ts";
import { recoveryHandlers } from "./identity-recovery.ts";

export const identityAccess = {
  signUp: "anonymous",
  verifyIdentity: "anonymous",
  resendVerification: "anonymous",
  startPasswordReset: "anonymous",
  checkPasswordResetCode: "anonymous",
  completePasswordReset: "anonymous",
  changePassword: "session",
  listIdentities: "session",
  removeIdentity: "session",
  startEmailChange: "session",
  checkEmailChangeCode: "session",
  confirmEmailChange: "session",
  addPhone: "session",
  verifyPhone: "session",
  getIdentityProfile: "session",
  updateIdentityProfile: "session",
} as const satisfies AccessPolicy<typeof IdentityService>;

export function identityService(app: App) {
  return {
    async signUp(req, ctx) {
      // With a bearer (Webcom): the address joins the caller's account, in its tenant, once verified.
      const token = bearerToken(ctx.requestHeader);
      let caller: { accountId: string; tenantId: string } | undefined;
      if (token !== undefined) {
        if (isApiKeySecret(token)) throw permissionDenied("SESSION_REQUIRED", "adding an address needs a person's session, not an API key");
        const { session } = await app.sessions.validate(token);
        caller = { accountId: session.accountId, tenantId: session.tenantId };
      }
      await app.identity.signUp({
        tenantId: caller?.tenantId ?? tenantOf(ctx),
        ...(caller ? { accountId: caller.accountId } : {}),
        email: req.email,
        password: req.password,
        locale: req.locale,
        meta: requestMeta(ctx),
        consents: req.consents,
      });
      return {};
    },
    async verifyIdentity(req, ctx) {
      const { token, session } = await app.identity.verifyIdentity({ token: req.token, tenantId: tenantOf(ctx), meta: requestMeta(ctx) });
      return { sessionToken: token, accountId: session.accountId, expireTime: timestampFromMs(session.expiresAt) };
    },
    async addPhone(req, ctx) {
      await app.phones.addPhone({ principal: requireSession(ctx).principal, phone: req.phone, locale: req.locale, meta: requestMeta(ctx) });
      return {};
    },
    async verifyPhone(req, ctx) {
      await app.phones.verifyPhone({ principal: requireSession(ctx).principal, phone: req.phone, code: req.code, meta: requestMeta(ctx) });
      return {};
    },
    async getIdentityProfile(_req, ctx) {
      const { identityId, profile } = await app.phones.getIdentityProfile(requireSession(ctx).session);
      return { identityId, profile: profile as JsonObject };
    },
    async updateIdentityProfile(req, ctx) {
      const { identityId, profile } = await app.phones.updateIdentityProfile(requireSession(ctx).session, req.profile);
      return { identityId, profile: profile as JsonObject };
    },
    ...emailChangeHandlers(app),
    ...recoveryHandlers(app),
  } satisfies ServiceImpl<typeof IdentityService>;
}
