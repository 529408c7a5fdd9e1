// The two bundles an adapter opens. Only wiring (src/server/wiring.ts), the
// operator commands and tests hold a whole bundle; domain factories take the
// narrow ports they use.
import type { AccountStore } from "./accounts.ts";
import type { ApiKeyStore } from "./api-keys.ts";
import type { AuditStore } from "./audit.ts";
import type { CodeStore } from "./codes.ts";
import type { ConsentStore } from "./consents.ts";
import type { EventStore, WebhookStore } from "./events.ts";
import type { BlockingHookStore } from "./hooks.ts";
import type { TemplateStore } from "./templates.ts";
import type { KeyStore } from "./keys.ts";
import type { RateLimiter } from "./limits.ts";
import type { OutboxStore } from "./outbox.ts";
import type { RevocationStore } from "./revocations.ts";
import type { SigningKeyStore } from "./signing-keys.ts";
import type { InvalidationBus } from "./invalidation.ts";
import type { Leases } from "./leases.ts";
import type { SecondFactorStore } from "./second-factors.ts";
import type { SessionStore } from "./sessions.ts";
import type { SocialProviderStore } from "./social-providers.ts";
import type { TenantStore } from "./tenants.ts";
import type { TokenStore } from "./tokens.ts";

/** Everything ephemeral: Redis in production, in-process for the embedded default. */
export interface EphemeralStores {
  sessions: SessionStore;
  tokens: TokenStore;
  /** Pending phone codes (hashed, single use, attempt-limited). */
  codes: CodeStore;
  rateLimiter: RateLimiter;
  invalidation: InvalidationBus;
  leases: Leases;
  /** True when the backend answers; never throws. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface DurableStores {
  tenants: TenantStore;
  accounts: AccountStore;
  apiKeys: ApiKeyStore;
  /** Social sign-in providers. */
  socialProviders: SocialProviderStore;
  outbox: OutboxStore;
  audit: AuditStore;
  consents: ConsentStore;
  /** Domain events (written by the account changes themselves) and the stream of them. */
  events: EventStore;
  /** Tenants' webhook endpoints and their deliveries. */
  webhooks: WebhookStore;
  /** Tenants' blocking hooks (before sign-up, before a session). */
  hooks: BlockingHookStore;
  /** Tenants' own message templates. */
  templates: TemplateStore;
  /** Revocations committed changes still owe. */
  revocations: RevocationStore;
  /** Keys that sign access tokens. */
  signingKeys: SigningKeyStore;
  /** Second factors and recovery codes. */
  secondFactors: SecondFactorStore;
  /** Wrapped data keys and the erasure ledger; a separate database when configured. */
  keys: KeyStore;
  /** True when the backend answers; never throws. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
