// The domain facade services call: built once in src/server/wiring.ts.
import type { AccessTokens } from "../domain/access-tokens.ts";
import type { Accounts } from "../domain/accounts.ts";
import type { AssistedRecovery } from "../domain/assisted-recovery.ts";
import type { AdminUsers } from "../domain/admin-users.ts";
import type { ApiKeys } from "../domain/api-keys.ts";
import type { Audit } from "../domain/audit.ts";
import type { Consents } from "../domain/consents.ts";
import type { DataExport } from "../domain/data-export.ts";
import type { EmailChange } from "../domain/email-change.ts";
import type { Erasure } from "../domain/erasure.ts";
import type { FailedMessages } from "../domain/failed-messages.ts";
import type { IdentityFlows } from "../domain/identity.ts";
import type { PhoneIdentities } from "../domain/phone-identities.ts";
import type { RecoveryFlows } from "../domain/recovery.ts";
import type { RevocationFeed } from "../domain/revocation-feed.ts";
import type { Revocations } from "../domain/revocations.ts";
import type { Profiles } from "../domain/profile.ts";
import type { Passkeys } from "../domain/passkeys.ts";
import type { SecondFactors } from "../domain/second-factors.ts";
import type { Sessions } from "../domain/sessions.ts";
import type { SocialSignIn } from "../domain/social-sign-in.ts";
import type { SocialProviders } from "../domain/social-providers.ts";
import type { SubscriptionCache, Subscriptions } from "../domain/subscriptions.ts";
import type { Tenants } from "../domain/tenants.ts";
import type { Webhooks } from "../domain/webhooks.ts";
import type { BlockingHooks } from "../domain/hooks.ts";
import type { MessageTemplates } from "../domain/message-templates.ts";

export interface App {
  identity: IdentityFlows;
  /** Phone identities (SMS codes) and guests. */
  phones: PhoneIdentities;
  recovery: RecoveryFlows;
  emailChange: EmailChange;
  sessions: Sessions;
  /** Each account's plan as ValidateSession answers it (src/domain/subscriptions.ts). */
  subscriptionCache: SubscriptionCache;
  subscriptions: Subscriptions;
  accounts: Accounts;
  profiles: Profiles;
  tenants: Tenants;
  apiKeys: ApiKeys;
  audit: Audit;
  consents: Consents;
  dataExport: DataExport;
  erasure: Erasure;
  users: AdminUsers;
  /** Customer service: admin-assisted email change and temporary passwords. */
  assistedRecovery: AssistedRecovery;
  failedMessages: FailedMessages;
  socialProviders: SocialProviders;
  social: SocialSignIn;
  /** Durable revocation (RevokeOtherSessions ends sessions the way admin changes do). */
  revocations: Pick<Revocations, "revokeAll">;
  /** Signed access tokens and their public keys (src/domain/access-tokens.ts). */
  accessTokens: AccessTokens;
  /** What WatchRevocations streams (src/domain/revocation-feed.ts). */
  revocationFeed: RevocationFeed;
  /** TOTP enrollment, recovery codes, sign-in challenges and step-up. */
  secondFactors: SecondFactors;
  /** Tenants' webhooks and the pull stream of their events. */
  webhooks: Webhooks;
  /** Tenants' blocking hooks (before sign-up, before a session). */
  hooks: BlockingHooks;
  /** Tenants' own message templates. */
  templates: MessageTemplates;
  /** Passkeys (WebAuthn): registration, passwordless sign-in, second-factor answers. */
  passkeys: Passkeys;
}
