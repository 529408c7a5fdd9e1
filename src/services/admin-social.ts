// AdminService: social sign-in providers. Proto ⇄ domain only; the rules live
// in src/domain/social-providers.ts.
//
// Who may call: an ADMIN of the tenant, or a platform super admin (any tenant);
// no API key. Every call is audited in the tenant (social_provider.create,
// .list, .update, .delete), the provider as target. Secrets go in, never out.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AppleSettingsSchema,
  SocialProviderSchema,
  type AdminService,
  type SocialProvider as SocialProviderMessage,
} from "../../gen/identity/v1/admin_service_pb.js";
import { invalidArgument } from "../domain/errors.ts";
import { isId } from "../domain/ids.ts";
import type { SocialProviderSecrets, SocialProviderSettings, SocialProviderView } from "../domain/social-providers.ts";
import { Role } from "../domain/types.ts";
import type { App } from "./app.ts";
import { audited, authorize } from "./authorize.ts";

const PROVIDER_ADMIN = { permission: null, minRole: Role.ADMIN } as const;

export function socialProviderToProto(p: SocialProviderView): SocialProviderMessage {
  return create(SocialProviderSchema, {
    id: p.id,
    tenantId: p.tenantId,
    kind: p.kind,
    name: p.name,
    issuer: p.issuer,
    clientId: p.clientId,
    clientSecretSet: p.clientSecretSet,
    scopes: p.scopes,
    redirectUris: p.redirectUris,
    ...(p.appleTeamId !== "" || p.applePrivateKeySet
      ? { apple: create(AppleSettingsSchema, { teamId: p.appleTeamId, keyId: p.appleKeyId, privateKeySet: p.applePrivateKeySet }) }
      : {}),
    createTime: timestampFromMs(p.createdAt),
    updateTime: timestampFromMs(p.updatedAt),
  });
}

function settingsOf(p: SocialProviderMessage): SocialProviderSettings {
  return {
    kind: p.kind,
    name: p.name,
    issuer: p.issuer,
    clientId: p.clientId,
    scopes: p.scopes,
    redirectUris: p.redirectUris,
    appleTeamId: p.apple?.teamId ?? "",
    appleKeyId: p.apple?.keyId ?? "",
  };
}

type Patch = Partial<Omit<SocialProviderSettings, "kind">> & Partial<SocialProviderSecrets>;

/** What an UpdateSocialProvider mask changes, read from the request. */
function patchOf(paths: readonly string[], p: SocialProviderMessage, secrets: SocialProviderSecrets): Patch {
  if (paths.length === 0) throw invalidArgument("update_mask", "name the fields to change");
  const s = settingsOf(p);
  const fields: Record<string, (patch: Patch) => void> = {
    name: (x) => (x.name = s.name),
    issuer: (x) => (x.issuer = s.issuer),
    client_id: (x) => (x.clientId = s.clientId),
    client_secret: (x) => (x.clientSecret = secrets.clientSecret),
    scopes: (x) => (x.scopes = s.scopes),
    redirect_uris: (x) => (x.redirectUris = s.redirectUris),
    "apple.team_id": (x) => (x.appleTeamId = s.appleTeamId),
    "apple.key_id": (x) => (x.appleKeyId = s.appleKeyId),
    apple_private_key: (x) => (x.applePrivateKey = secrets.applePrivateKey),
  };
  const patch: Patch = {};
  for (const path of paths) {
    const apply = fields[path];
    if (!apply) throw invalidArgument("update_mask", `"${path.slice(0, 80)}" is not an updatable provider field`);
    apply(patch);
  }
  return patch;
}

export type SocialProviderRpcs = "createSocialProvider" | "listSocialProviders" | "updateSocialProvider" | "deleteSocialProvider";

export function socialProviderHandlers(app: App): Pick<ServiceImpl<typeof AdminService>, SocialProviderRpcs> {
  return {
    async createSocialProvider(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...PROVIDER_ADMIN, tenantId: req.tenantId });
      if (!req.provider) throw invalidArgument("provider", "is required");
      const input = req.provider;
      const provider = await audited(
        app,
        ctx,
        principal,
        { tenantId, action: "social_provider.create", target: "" },
        async () => {
          await app.tenants.get(tenantId);
          return app.socialProviders.create(tenantId, settingsOf(input), { clientSecret: req.clientSecret, applePrivateKey: req.applePrivateKey });
        },
        (created) => ({ tenantId, target: `social_provider:${created.id}` }),
      );
      return { provider: socialProviderToProto(provider) };
    },

    async listSocialProviders(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, { ...PROVIDER_ADMIN, tenantId: req.tenantId });
      const providers = await audited(app, ctx, principal, { tenantId, action: "social_provider.list", target: "" }, () => app.socialProviders.list(tenantId));
      return { providers: providers.map(socialProviderToProto) };
    },

    async updateSocialProvider(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, PROVIDER_ADMIN);
      const input = req.provider;
      if (!input) throw invalidArgument("provider", "is required");
      if (input.id === "") throw invalidArgument("provider.id", "is required");
      const patch = patchOf(req.updateMask?.paths ?? [], input, { clientSecret: req.clientSecret, applePrivateKey: req.applePrivateKey });
      const target = isId(input.id) ? `social_provider:${input.id}` : "";
      const provider = await audited(app, ctx, principal, { tenantId, action: "social_provider.update", target }, () =>
        app.socialProviders.update(tenantId, input.id, patch),
      );
      return { provider: socialProviderToProto(provider) };
    },

    async deleteSocialProvider(req, ctx) {
      const { principal, tenantId } = await authorize(app, ctx, PROVIDER_ADMIN);
      if (req.providerId === "") throw invalidArgument("provider_id", "is required");
      const target = isId(req.providerId) ? `social_provider:${req.providerId}` : "";
      await audited(app, ctx, principal, { tenantId, action: "social_provider.delete", target }, () => app.socialProviders.delete(tenantId, req.providerId));
      return {};
    },
  };
}
