// Forward-only migrations, written with Kysely's schema builder so the same
// steps run on MySQL/MariaDB/TiDB and SQLite. Never edit a shipped migration:
// add a new one. Kysely's migrator takes a lock, so several instances may start at once.
import type { UntypedDatabase } from "./schema.ts";
import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import { foundation } from "./migrations/0001_foundation.ts";
import { audit } from "./migrations/0002_audit.ts";
import { administration } from "./migrations/0003_administration.ts";
import { unverifiedPurge } from "./migrations/0004_unverified_purge.ts";
import { consents } from "./migrations/0005_consents.ts";
import { userListing } from "./migrations/0006_user_listing.ts";
import { retention } from "./migrations/0007_retention.ts";
import { pendingRevocations } from "./migrations/0008_pending_revocations.ts";
import { outboxFailures } from "./migrations/0009_outbox_failures.ts";
import { identityModel } from "./migrations/0010_identity_model.ts";
import { signingKeys } from "./migrations/0011_signing_keys.ts";
import { secondFactors } from "./migrations/0011_second_factors.ts";
import { socialProviders } from "./migrations/0012_social_providers.ts";
import { subscriptions } from "./migrations/0010_subscriptions.ts";
import { webhooks } from "./migrations/0010_webhooks.ts";
import { blockingHooks } from "./migrations/0011_blocking_hooks.ts";
import { messageTemplates } from "./migrations/0012_message_templates.ts";
import { eventRetention } from "./migrations/0013_event_retention.ts";

// Each migration lives in its own file under migrations/; list it here under a
// name that sorts after the previous one.
const migrations: Record<string, Migration> = {
  "0001_foundation": foundation,
  "0002_audit": audit,
  "0003_administration": administration,
  "0004_unverified_purge": unverifiedPurge,
  "0005_consents": consents,
  "0006_user_listing": userListing,
  "0007_retention": retention,
  "0008_pending_revocations": pendingRevocations,
  "0009_outbox_failures": outboxFailures,
  "0010_identity_model": identityModel,
  "0011_signing_keys": signingKeys,
  "0011_second_factors": secondFactors,
  "0012_social_providers": socialProviders,
  "0010_subscriptions": subscriptions,
  "0010_webhooks": webhooks,
  "0011_blocking_hooks": blockingHooks,
  "0012_message_templates": messageTemplates,
  "0013_event_retention": eventRetention,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Applies every pending migration; idempotent. Throws with the failing migration's error. */
export async function migrateToLatest(db: UntypedDatabase): Promise<string[]> {
  // Unordered: migrations written in parallel branches may land in any order; each is idempotent.
  const migrator = new Migrator({ db, provider, allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
