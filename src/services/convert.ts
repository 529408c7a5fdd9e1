// Domain → proto translation, shared by every service. Responses are built
// from explicit fields only: hashes, keys and ciphertexts never reach the wire.
import type { IdentityView } from "../domain/accounts.ts";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { JsonObject } from "@bufbuild/protobuf";
import {
  AccountSchema,
  ConsentSchema,
  SessionSchema,
  type Account as AccountMessage,
  type Consent as ConsentMessage,
  type Session as SessionMessage,
} from "../../gen/identity/v1/common_pb.js";
import type { Consent } from "../domain/consents.ts";
import { invalidArgument } from "../domain/errors.ts";
import { ATTRIBUTE_PATH_PREFIX, attributeKeyOf } from "../domain/profile.ts";
import type { Account, SessionRecord } from "../domain/types.ts";

export function accountToProto(account: Account): AccountMessage {
  return create(AccountSchema, {
    id: account.id,
    tenantId: account.tenantId,
    role: account.role,
    state: account.state,
    email: account.profile.email,
    emailVerified: account.emailVerified,
    displayName: account.profile.displayName,
    pronouns: account.profile.pronouns,
    locale: account.locale,
    customAttributes: account.profile.customAttributes as JsonObject,
    pushTokens: account.profile.pushTokens.map((t) => ({
      deviceId: t.deviceId,
      platform: t.platform,
      token: t.token,
      createTime: timestampFromMs(t.createdAt),
    })),
    subscription: {
      plan: account.plan,
      status: account.planStatus,
      renews: account.planRenews,
      ...(account.planExpiresAt === null ? {} : { expireTime: timestampFromMs(account.planExpiresAt) }),
    },
    createTime: timestampFromMs(account.createdAt),
    updateTime: timestampFromMs(account.updatedAt),
  });
}

export function consentToProto(consent: Consent): ConsentMessage {
  return create(ConsentSchema, {
    purpose: consent.purpose,
    version: consent.version,
    granted: consent.granted,
    recordTime: timestampFromMs(consent.recordedAt),
    client: consent.client,
  });
}

/** A session as its owner may see it: never its token or the token's hash. */
export function sessionToProto(session: SessionRecord, client: { ip: string; userAgent: string }, current: boolean): SessionMessage {
  return create(SessionSchema, {
    id: session.sessionId,
    userAgent: client.userAgent,
    ipAddress: client.ip,
    createTime: timestampFromMs(session.createdAt),
    lastSeenTime: timestampFromMs(session.lastSeenAt),
    expireTime: timestampFromMs(session.expiresAt),
    assuranceLevel: session.assurance,
    current,
    authenticationMethods: authenticationMethodsToProto(session),
  });
}

/** The session's proofs, in order, as ListSessions and ValidateSession show them. */
export function authenticationMethodsToProto(session: SessionRecord) {
  return session.methods.map((m) => ({ method: m.method, identityId: m.identityId, completeTime: timestampFromMs(m.at) }));
}

/** Keeps only the Account fields named in a mask's paths (snake_case, as in FieldMask). */
export function pickAccountFields(message: AccountMessage, paths: readonly string[]): AccountMessage {
  const picked = create(AccountSchema, { id: message.id });
  const allowed: Record<string, keyof AccountMessage> = {
    id: "id",
    tenant_id: "tenantId",
    role: "role",
    state: "state",
    email: "email",
    email_verified: "emailVerified",
    display_name: "displayName",
    pronouns: "pronouns",
    locale: "locale",
    custom_attributes: "customAttributes",
    push_tokens: "pushTokens",
    subscription: "subscription",
    create_time: "createTime",
    update_time: "updateTime",
  };
  for (const path of paths) {
    const key = allowed[path];
    if (key) (picked as unknown as Record<string, unknown>)[key] = message[key];
    else if (path.startsWith(ATTRIBUTE_PATH_PREFIX)) {
      // One attribute: only it, when the account has it.
      const name = path.slice(ATTRIBUTE_PATH_PREFIX.length);
      const all = (message.customAttributes ?? {}) as JsonObject;
      if (Object.hasOwn(all, name)) picked.customAttributes = { ...((picked.customAttributes ?? {}) as JsonObject), [name]: all[name]! };
    }
  }
  return picked;
}

/** Checks a read mask's paths: Account fields, or "custom_attributes.<key>"; invalid_argument naming `field` otherwise. */
export function checkAccountReadMask(field: string, paths: readonly string[]): void {
  for (const path of paths) {
    if (path.startsWith(ATTRIBUTE_PATH_PREFIX)) attributeKeyOf(field, path);
    else if (!(ACCOUNT_FIELD_PATHS as readonly string[]).includes(path)) throw invalidArgument(field, `unknown account field "${path.slice(0, 100)}"`);
  }
}

export const ACCOUNT_FIELD_PATHS = [
  "id",
  "tenant_id",
  "role",
  "state",
  "email",
  "email_verified",
  "display_name",
  "pronouns",
  "locale",
  "custom_attributes",
  "push_tokens",
  "subscription",
  "create_time",
  "update_time",
] as const;

/** An identity as its owner and admins see it (ListIdentities, GetUser). */
export function identityToProto(i: IdentityView) {
  return {
    id: i.id,
    kind: i.kind,
    value: i.value,
    verified: i.verifiedAt !== null,
    createTime: timestampFromMs(i.createdAt),
    ...(i.verifiedAt === null ? {} : { verifyTime: timestampFromMs(i.verifiedAt) }),
    issuer: i.issuer,
  };
}
