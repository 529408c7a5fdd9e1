// identity.v1.SessionService: translate proto ⇄ domain, nothing else.
// ValidateSession over gRPC is also served by the fast path (src/server/fast-path.ts);
// both answer through the one domain function validateSession and validateResponse here.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type SessionService, ValidateSessionResponseSchema, type ValidateSessionResponse } from "../../gen/identity/v1/session_service_pb.js";
import { isApiKeySecret } from "../domain/api-keys.ts";
import { DomainError, invalidArgument, permissionDenied, unauthenticated } from "../domain/errors.ts";
import type { SecondFactorCode } from "../domain/second-factors.ts";
import { planAnswer } from "../domain/subscriptions.ts";
import { validateSession, type ValidatedSession } from "../domain/validate-session.ts";
import { requireNonEmpty } from "../domain/validation.ts";
import type { AccessPolicy } from "./access.ts";
import type { App } from "./app.ts";
import { bearerOf, bearerToken, requestMeta, requireSession, tenantOf } from "./call-context.ts";
import { watchRevocations } from "./revocation-stream.ts";
import { accountToProto, authenticationMethodsToProto, checkAccountReadMask, pickAccountFields, sessionToProto } from "./convert.ts";

export const sessionAccess = {
  signIn: "anonymous",
  sendSignInCode: "anonymous",
  // Ends the session its bearer names, live or not: idempotent, so never refused for a dead token.
  signOut: "anonymous",
  // Checked by validateSession's own caller rule (the tenant may require an API key).
  validateSession: "anonymous",
  listSessions: "session",
  revokeSession: "session",
  revokeOtherSessions: "session",
  refreshSession: "session",
  // An API key with sessions.validate (watchRevocations authorizes it).
  watchRevocations: "principal",
  issueAccessToken: "session",
  // The challenge is the credential (from SignIn's password check).
  completeSecondFactor: "anonymous",
  // The challenge is the credential, as for CompleteSecondFactor.
  sendSecondFactorCode: "anonymous",
  // Anonymous: the ceremony's challenge; rate limited per IP.
  startPasskeySignIn: "anonymous",
  // Anonymous, or signed in to link: the handler reads the bearer itself.
  startSocialSignIn: "anonymous",
  // The state says everything (tenant, provider, the account to link to).
  completeSocialSignIn: "anonymous",
} as const satisfies AccessPolicy<typeof SessionService>;

export function validateResponse({ session, tenant, subscription }: ValidatedSession): ValidateSessionResponse {
  const plan = planAnswer(tenant, subscription);
  return create(ValidateSessionResponseSchema, {
    accountId: session.accountId,
    tenantId: session.tenantId,
    role: session.role,
    assuranceLevel: session.assurance,
    expireTime: timestampFromMs(session.expiresAt),
    sessionId: session.sessionId,
    authenticationMethods: authenticationMethodsToProto(session),
    planId: plan.planId,
    subscriptionStatus: plan.status,
    entitlements: [...plan.entitlements],
  });
}

/** The profile_mask paths, each a known Account field. */
function profilePaths(paths: readonly string[]): readonly string[] {
  checkAccountReadMask("profile_mask", paths);
  return paths;
}

/** SignIn's (and social sign-in's) second_factor_challenge. */
function challengeToProto({
  challenge,
  expiresAt,
  kinds,
  passkeyOptionsJson,
}: {
  challenge: string;
  expiresAt: number;
  kinds: number[];
  passkeyOptionsJson?: string;
}) {
  return { challenge, expireTime: timestampFromMs(expiresAt), kinds, passkeyOptionsJson: passkeyOptionsJson ?? "" };
}

export function sessionService(app: App) {
  return {
    async signIn(req, ctx) {
      const paths = profilePaths(req.profileMask?.paths ?? []);
      const signedIn = async () => {
        const meta = requestMeta(ctx);
        switch (req.method.case) {
          case "emailPassword": {
            const { email, password, newPassword } = req.method.value;
            return app.identity.signInWithPassword({ tenantId: tenantOf(ctx), email, password, newPassword, meta });
          }
          case "idToken": {
            const { providerId, idToken, nonce } = req.method.value;
            return app.social.signInWithIdToken({ tenantId: tenantOf(ctx), providerId, idToken, nonce, meta });
          }
          case "phoneCode":
            return app.phones.signInWithPhoneCode({ tenantId: tenantOf(ctx), phone: req.method.value.phone, code: req.method.value.code, meta });
          case "passkey":
            return app.passkeys.signIn({ tenantId: tenantOf(ctx), responseJson: req.method.value.responseJson, meta });
          case "guest":
            // Webcom: a guest sign-in while signed in would add a guest identity to an account, which is meaningless.
            if (ctx.requestHeader.get("authorization") !== null)
              throw new DomainError("failed_precondition", "GUEST_WHILE_SIGNED_IN", "a guest sign-in is refused while the call carries a bearer");
            return app.phones.signInAsGuest({ tenantId: tenantOf(ctx), meta });
          default:
            throw invalidArgument("method", "a sign-in method is required (email_password, id_token, phone_code, passkey or guest)");
        }
      };
      const result = await signedIn();
      if ("secondFactor" in result) return { accountId: result.account.id, secondFactorChallenge: challengeToProto(result.secondFactor) };
      const { token, session, account } = result;
      return {
        sessionToken: token,
        accountId: account.id,
        expireTime: timestampFromMs(session.expiresAt),
        ...(paths.length > 0 ? { profile: pickAccountFields(accountToProto(account), paths) } : {}),
      };
    },
    async startPasskeySignIn(_req, ctx) {
      return { optionsJson: await app.passkeys.startSignIn(tenantOf(ctx), requestMeta(ctx)) };
    },
    async sendSignInCode(req, ctx) {
      await app.phones.sendSignInCode({ tenantId: tenantOf(ctx), phone: req.phone, locale: req.locale, meta: requestMeta(ctx) });
      return {};
    },
    async sendSecondFactorCode(req, ctx) {
      const { expiresAt, phoneHint } = await app.secondFactors.sendSmsCode({ tenantId: tenantOf(ctx), challenge: req.challenge, meta: requestMeta(ctx) });
      return { expireTime: timestampFromMs(expiresAt), phoneHint };
    },
    async completeSecondFactor(req, ctx) {
      const paths = profilePaths(req.profileMask?.paths ?? []);
      const code: SecondFactorCode | undefined =
        req.code.case === "totpCode"
          ? { kind: "totp", code: req.code.value }
          : req.code.case === "recoveryCode"
            ? { kind: "recovery", code: req.code.value }
            : req.code.case === "smsCode"
              ? { kind: "sms", code: req.code.value }
              : req.code.case === "passkeyResponseJson"
                ? { kind: "passkey", code: req.code.value }
                : undefined;
      const { token, session, account, recoveryCodesRemaining } = await app.secondFactors.complete({
        tenantId: tenantOf(ctx),
        challenge: req.challenge,
        code,
        meta: requestMeta(ctx),
      });
      return {
        sessionToken: token,
        accountId: account.id,
        expireTime: timestampFromMs(session.expiresAt),
        recoveryCodesRemaining,
        ...(paths.length > 0 ? { profile: pickAccountFields(accountToProto(account), paths) } : {}),
      };
    },
    async signOut(_req, ctx) {
      const token = bearerToken(ctx.requestHeader);
      if (token === undefined) throw unauthenticated("SESSION_REQUIRED", "a session token is required (authorization: Bearer <token>)");
      await app.sessions.end(token);
      return {};
    },
    async validateSession(req, ctx) {
      return validateResponse(await validateSession(app, req.sessionToken, () => bearerOf(ctx.requestHeader.get("authorization"))));
    },
    async listSessions(_req, ctx) {
      const { session, tokenHash } = requireSession(ctx);
      const sessions = await app.sessions.list(session.accountId);
      return { sessions: sessions.map((s) => sessionToProto(s.session, s.client, s.tokenHash === tokenHash)) };
    },
    async revokeSession(req, ctx) {
      const { session } = requireSession(ctx);
      const sessionId = requireNonEmpty("session_id", req.sessionId, 64);
      // Looked up among the caller's own sessions only: another account's id is as unknown as a made-up one.
      if (!(await app.sessions.revoke(session.accountId, sessionId))) throw new DomainError("not_found", "SESSION_NOT_FOUND", "no such session");
      return {};
    },
    async revokeOtherSessions(_req, ctx) {
      const { session, tokenHash } = requireSession(ctx);
      // The durable path (src/domain/revocations.ts): queued, then carried out, so a failing
      // session store or invalidation channel cannot lose it, and a retry finishes it.
      return { revokedCount: await app.revocations.revokeAll(session.tenantId, session.accountId, "sessions_revoked", tokenHash) };
    },
    async refreshSession(_req, ctx) {
      const valid = requireSession(ctx);
      const tenant = await app.tenants.get(valid.session.tenantId);
      const refreshed = await app.sessions.refresh(valid, tenant.settings);
      return { expireTime: timestampFromMs(refreshed.expiresAt) };
    },
    watchRevocations: (_req, ctx) => watchRevocations(app.revocationFeed, ctx),
    async issueAccessToken(_req, ctx) {
      const { session } = requireSession(ctx);
      const [tenant, subscription] = await Promise.all([app.tenants.get(session.tenantId), app.subscriptionCache.get(session.tenantId, session.accountId)]);
      const issued = await app.accessTokens.issue(session, planAnswer(tenant, subscription));
      return { accessToken: issued.token, expireTime: timestampFromMs(issued.expiresAt), keyId: issued.kid };
    },
    async startSocialSignIn(req, ctx) {
      // Signed in: the sign-in links the provider to the caller's account, in its tenant.
      const token = bearerToken(ctx.requestHeader);
      let linkAccountId: string | undefined;
      let tenantId = tenantOf(ctx);
      if (token !== undefined) {
        if (isApiKeySecret(token)) throw permissionDenied("SESSION_REQUIRED", "linking a provider needs a person's session, not an API key");
        const { session } = await app.sessions.validate(token);
        linkAccountId = session.accountId;
        tenantId = session.tenantId;
      }
      return app.social.start({ tenantId, providerId: req.providerId, redirectUri: req.redirectUri, ...(linkAccountId ? { linkAccountId } : {}) });
    },
    async completeSocialSignIn(req, ctx) {
      const paths = profilePaths(req.profileMask?.paths ?? []);
      const result = await app.social.complete({
        tenantId: tenantOf(ctx),
        state: req.state,
        code: req.code,
        iss: req.iss,
        user: req.user,
        meta: requestMeta(ctx),
      });
      if ("secondFactor" in result)
        return { accountId: result.account.id, linked: result.linked, secondFactorChallenge: challengeToProto(result.secondFactor) };
      return {
        sessionToken: result.token,
        accountId: result.account.id,
        expireTime: timestampFromMs(result.session.expiresAt),
        accountCreated: result.created,
        linked: result.linked,
        ...(paths.length > 0 ? { profile: pickAccountFields(accountToProto(result.account), paths) } : {}),
      };
    },
  } satisfies ServiceImpl<typeof SessionService>;
}
