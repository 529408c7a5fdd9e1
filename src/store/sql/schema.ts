// Table shapes as Kysely sees them. Times are epoch milliseconds (BIGINT) and
// booleans 0/1 so one set of queries serves MySQL/MariaDB/TiDB and SQLite.
// Encrypted columns hold base64url AES-GCM ciphertext; *_hash columns hold hex digests.
import type { Generated, Kysely, Transaction } from "kysely";

export interface TenantsTable {
  id: string;
  name: string;
  settings: string;
  created_at: number;
  /** Bumped by every update: the compare-and-set that keeps concurrent updates from losing one another. */
  version: Generated<number>;
}

export interface AccountsTable {
  id: string;
  tenant_id: string;
  role: number;
  state: number;
  locale: string;
  email_verified: number;
  /** Encrypted JSON of the Profile under the account's data key. */
  profile: string;
  password_hash: string | null;
  plan: string;
  plan_expires_at: number | null;
  plan_status: Generated<number>;
  plan_renews: Generated<number>;
  plan_reminded_for: number | null;
  temporary_password_until: number | null;
  created_at: number;
  updated_at: number;
}

/** Wrapped data keys, apart from the data they protect (erasure destroys the key). */
export interface AccountKeysTable {
  account_id: string;
  tenant_id: string;
  wrapped_key: string;
  created_at: number;
}

export interface IdentitiesTable {
  id: string;
  tenant_id: string;
  account_id: string;
  kind: number;
  /** Blind index (HMAC) of the normalized value; unique per tenant and kind. */
  lookup_hash: string;
  /** Encrypted value under the account's data key. */
  value: string;
  verified_at: number | null;
  created_at: number;
  /** The issuer URL of an external (OIDC) identity; null otherwise (0010). */
  issuer: string | null;
  /** Encrypted JSON profile of the identity under the account's data key; null when never set (0010). */
  profile: string | null;
}

export interface OutboxTable {
  id: string;
  tenant_id: string;
  account_id: string;
  kind: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  locked_until: number;
  lock_owner: string | null;
  last_error: string | null;
  /** "permanent" or "transient": the class of last_error (0009). */
  last_error_class: string | null;
  /** When the message was given up on (status "failed"); null otherwise (0009). */
  failed_at: number | null;
  /** When it was last requeued by an operator; null: created_at. Its maximum age counts from here (0009). */
  queued_at: number | null;
  /** Encrypted message (recipient, locale, variables) under the account's data key; cleared once sent. */
  payload: string | null;
  created_at: number;
  sent_at: number | null;
}

/** One row per tenant's audit chain: the last event's sequence and hash (locked by every append). */
export interface AuditHeadsTable {
  tenant_id: string;
  sequence: number;
  hash: string;
}

/** Append-only, hash-chained audit events; targets name account ids, never emails. */
/** Where a pruned audit chain now starts: the sequence and hash of the last event retention deleted. */
export interface AuditCheckpointsTable {
  tenant_id: string;
  sequence: number;
  hash: string;
}

export interface AuditEventsTable {
  tenant_id: string;
  sequence: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  reason: string;
  ip: string;
  user_agent: string;
  outcome: string;
  prev_hash: string;
  hash: string;
}

/** Service API keys: the secret is stored only as hashSecret(secret). */
export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  secret_hash: string;
  /** Comma-separated permissions. */
  permissions: string;
  created_at: number;
  revoked_at: number | null;
  created_by: string;
}

/** Keys that sign access tokens (migration 0011, src/domain/access-tokens.ts). */
export interface SigningKeysTable {
  kid: string;
  algorithm: string;
  /** The public half as a JWK (JSON), published at /.well-known/jwks.json. */
  public_jwk: string;
  /** The private half (PKCS#8), sealed under the KEK (Keyring.sealSecret). */
  sealed_private_key: string;
  created_at: number;
  /** Signs from then on (a new key is published before it signs). */
  active_from: number;
  /** Signs no more from then on; null while it is the newest. */
  retire_at: number | null;
}

/** Revocations a committed change still owes (migration 0008, src/domain/revocations.ts). */
export interface PendingRevocationsTable {
  id: string;
  account_id: string;
  tenant_id: string;
  reason: string;
  keep_token_hash: string | null;
  created_at: number;
}

/** Consent decisions, one row per decision (append-only); the newest per purpose is the current state. */
/** Second factors (0011): the secret sealed under the account's data key. */
export interface SecondFactorsTable {
  id: string;
  tenant_id: string;
  account_id: string;
  kind: number;
  secret: string;
  created_at: number;
  confirmed_at: number | null;
  last_used_step: number | null;
  last_used_at: number | null;
}

/** Recovery codes (0011): keyed hashes only, single-use through used_at. */
export interface RecoveryCodesTable {
  account_id: string;
  code_hash: string;
  created_at: number;
  used_at: number | null;
}

export interface ConsentsTable {
  id: string;
  tenant_id: string;
  account_id: string;
  purpose: string;
  version: string;
  /** 1 granted, 0 withdrawn. */
  granted: number;
  /** The client it was recorded through: its user agent, cut to 200 characters. */
  client: string;
  recorded_at: number;
}

/** Social sign-in providers (migration 0012); secrets sealed under the provider's own data key. */
export interface SocialProvidersTable {
  id: string;
  tenant_id: string;
  kind: number;
  name: string;
  issuer: string;
  client_id: string;
  /** JSON array of scopes. */
  scopes: string;
  /** JSON array of redirect URIs. */
  redirect_uris: string;
  apple_team_id: string;
  apple_key_id: string;
  wrapped_key: string;
  /** JSON of the secrets, sealed. */
  secrets: string;
  created_at: number;
  updated_at: number;
}

/** Domain events (0010): ids and kinds only; `sequence` given after commit by the dispatcher. */
export interface EventsTable {
  id: string;
  tenant_id: string;
  account_id: string | null;
  type: string;
  /** JSON of the event's data (ids, kinds). */
  data: string;
  sequence: number | null;
  created_at: number;
}

/** The highest event number retention deleted, per tenant (0013). */
export interface EventWatermarksTable {
  tenant_id: string;
  purged_through: number;
}

/** A tenant's webhook endpoints (0010); `secret` sealed under the KEK. */
export interface WebhooksTable {
  id: string;
  tenant_id: string;
  url: string;
  /** JSON array of event kinds; empty: every kind. */
  event_types: string;
  secret: string;
  created_at: number;
  updated_at: number;
}

/** Idempotency keys of subscription changes (hashed), so a retried billing webhook applies once. */
export interface SubscriptionChangesTable {
  tenant_id: string;
  key_hash: string;
  account_id: string;
  created_at: number;
}

/** One row per (webhook, event) (0010), leased by delivery workers. */
export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  webhook_id: string;
  event_id: string;
  account_id: string | null;
  sequence: number;
  status: string;
  attempts: number;
  next_attempt_at: number;
  locked_until: number;
  lock_owner: string | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
  queued_at: number;
}

/** A tenant's blocking hooks (0011), one per point; `secret` sealed under the KEK. */
export interface BlockingHooksTable {
  tenant_id: string;
  point: string;
  url: string;
  secret: string;
  timeout_ms: number;
  fail_open: number;
  created_at: number;
  updated_at: number;
}

/** A tenant's own message templates (0012), one per (kind, locale). */
export interface MessageTemplatesTable {
  tenant_id: string;
  kind: string;
  locale: string;
  subject: string;
  text_body: string;
  html_body: string;
  updated_at: number;
}

export interface Database {
  tenants: TenantsTable;
  accounts: AccountsTable;
  account_keys: AccountKeysTable;
  identities: IdentitiesTable;
  outbox: OutboxTable;
  api_keys: ApiKeysTable;
  audit_heads: AuditHeadsTable;
  audit_events: AuditEventsTable;
  audit_checkpoints: AuditCheckpointsTable;
  consents: ConsentsTable;
  pending_revocations: PendingRevocationsTable;
  signing_keys: SigningKeysTable;
  second_factors: SecondFactorsTable;
  recovery_codes: RecoveryCodesTable;
  social_providers: SocialProvidersTable;
  subscription_changes: SubscriptionChangesTable;
  events: EventsTable;
  event_watermarks: EventWatermarksTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  blocking_hooks: BlockingHooksTable;
  message_templates: MessageTemplatesTable;
}

/**
 * A database whose tables are named at run time (migrations, the per-account
 * table list, tests reading raw rows): Kysely's types cannot follow a list.
 */
// biome-ignore lint/suspicious/noExplicitAny: Kysely's own idiom for an untyped database
export type UntypedDatabase = Kysely<any>;
// biome-ignore lint/suspicious/noExplicitAny: as above, inside a transaction
export type UntypedTransaction = Transaction<any>;
