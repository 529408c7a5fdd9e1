// identity.v1.SessionService: translate proto ⇄ domain, nothing else.
// ValidateSession over gRPC is also served by the fast path (src/server/fast-path.ts),
// which must answer exactly like the handler here.
import type { ConnectRouter } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { SessionService, ValidateSessionResponseSchema, type ValidateSessionResponse } from "../../gen/identity/v1/session_service_pb.js";
import { DomainError, invalidArgument, unauthenticated } from "../domain/errors.ts";
import { requireNonEmpty } from "../domain/validation.ts";
import type { SessionRecord } from "../domain/types.ts";
import { bearerToken, requestMeta, tenantOf } from "../server/request-context.ts";
import type { App } from "./app.ts";
import { requireSession } from "./auth.ts";
import { authorizeValidate } from "./authorize.ts";
import { ACCOUNT_FIELD_PATHS, accountToProto, pickAccountFields, sessionToProto } from "./convert.ts";

export function validateResponse(session: SessionRecord): ValidateSessionResponse {
  return create(ValidateSessionResponseSchema, {
    accountId: session.accountId,
    tenantId: session.tenantId,
    role: session.role,
    assuranceLevel: session.assurance,
    expireTime: timestampFromMs(session.expiresAt),
    sessionId: session.sessionId,
  });
}

export function registerSessionService(router: ConnectRouter, app: App): void {
  router.service(SessionService, {
    async signIn(req, ctx) {
      const paths = req.profileMask?.paths ?? [];
      const unknown = paths.find((p) => !(ACCOUNT_FIELD_PATHS as readonly string[]).includes(p));
      if (unknown !== undefined) throw invalidArgument("profile_mask", `unknown account field "${unknown}"`);
      switch (req.method.case) {
        case "emailPassword": {
          const { token, session, account } = await app.identity.signInWithPassword({
            tenantId: tenantOf(ctx),
            email: req.method.value.email,
            password: req.method.value.password,
            meta: requestMeta(ctx),
          });
          return {
            sessionToken: token,
            accountId: account.id,
            expireTime: timestampFromMs(session.expiresAt),
            ...(paths.length > 0 ? { profile: pickAccountFields(accountToProto(account), paths) } : {}),
          };
        }
        default:
          throw invalidArgument("method", "a sign-in method is required (email_password)");
      }
    },
    async signOut(_req, ctx) {
      const token = bearerToken(ctx.requestHeader);
      if (token === undefined) throw unauthenticated("SESSION_REQUIRED", "a session token is required (authorization: Bearer <token>)");
      await app.sessions.end(token);
      return {};
    },
    async validateSession(req, ctx) {
      if (req.sessionToken === "") throw invalidArgument("session_token", "is required");
      const { session } = await app.sessions.validate(req.sessionToken);
      await authorizeValidate(app, session, ctx.requestHeader.get("authorization"));
      return validateResponse(session);
    },
    async listSessions(_req, ctx) {
      const { session, tokenHash } = await requireSession(app, ctx);
      const sessions = await app.sessions.list(session.accountId);
      return { sessions: sessions.map((s) => sessionToProto(s.session, s.tokenHash === tokenHash)) };
    },
    async revokeSession(req, ctx) {
      const { session } = await requireSession(app, ctx);
      const sessionId = requireNonEmpty("session_id", req.sessionId, 64);
      // Looked up among the caller's own sessions only: another account's id is as unknown as a made-up one.
      if (!(await app.sessions.revoke(session.accountId, sessionId))) throw new DomainError("not_found", "SESSION_NOT_FOUND", "no such session");
      return {};
    },
    async revokeOtherSessions(_req, ctx) {
      const { session, tokenHash } = await requireSession(app, ctx);
      return { revokedCount: await app.sessions.endAll(session.accountId, tokenHash) };
    },
    async refreshSession(_req, ctx) {
      const valid = await requireSession(app, ctx);
      const tenant = await app.tenants.get(valid.session.tenantId);
      const refreshed = await app.sessions.refresh(valid, tenant.settings);
      return { expireTime: timestampFromMs(refreshed.expiresAt) };
    },
  });
}
