// The durable stores over Kysely: one implementation for MySQL/MariaDB/TiDB and SQLite.
import type { Selectable } from "kysely";
import { type AccountStore, DuplicateIdentityError, type StoredAccount, type StoredIdentity } from "../../domain/ports/accounts.ts";
import type { KeyStore } from "../../domain/ports/keys.ts";
import type { DurableStores } from "../../domain/ports/stores.ts";
import type { TenantStore } from "../../domain/ports/tenants.ts";
import { AccountState, IdentityKind, type Role, type SubscriptionStatus, type Tenant } from "../../domain/types.ts";
import { accountAdminMethods } from "./account-admin-store.ts";
import { deleteAccountRows, presentAccountIds } from "./account-tables.ts";
import { createApiKeyStore } from "./api-key-store.ts";
import { createSqlSocialProviderStore } from "./social-provider-store.ts";
import { createSqlAuditStore } from "./audit-store.ts";
import { createSqlConsentStore, insertConsents } from "./consent-store.ts";
import { isUniqueViolation, type SqlDatabase } from "./database.ts";
import { translateSqlError, withDeadlockRetry } from "./errors.ts";
import { createSqlKeyStore } from "./key-store.ts";
import { createSqlSecondFactorStore } from "./second-factor-store.ts";
import { createSqlRevocationStore, queueRevocation } from "./revocation-store.ts";
import { createSqlSigningKeyStore } from "./signing-key-store.ts";
import { translatingErrors } from "../translate-errors.ts";
import { createSqlOutboxStore, insertMessages } from "./outbox-store.ts";
import { createSqlEventStore, createSqlWebhookStore, insertEvents } from "./event-store.ts";
import { createSqlHookStore } from "./hook-store.ts";
import { createSqlTemplateStore } from "./template-store.ts";
import type { AccountsTable, IdentitiesTable, TenantsTable } from "./schema.ts";

function toAccount(row: Selectable<AccountsTable>): StoredAccount {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    role: row.role as Role,
    state: row.state as AccountState,
    locale: row.locale,
    emailVerified: Number(row.email_verified) === 1,
    profileSealed: row.profile,
    passwordHash: row.password_hash,
    plan: row.plan,
    planExpiresAt: row.plan_expires_at === null ? null : Number(row.plan_expires_at),
    planStatus: Number(row.plan_status) as SubscriptionStatus,
    planRenews: Number(row.plan_renews) === 1,
    planRemindedFor: row.plan_reminded_for === null ? null : Number(row.plan_reminded_for),
    temporaryPasswordUntil: row.temporary_password_until === null ? null : Number(row.temporary_password_until),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toIdentity(row: Selectable<IdentitiesTable>): StoredIdentity {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    accountId: row.account_id,
    kind: Number(row.kind),
    lookupHash: row.lookup_hash,
    valueSealed: row.value,
    verifiedAt: row.verified_at === null ? null : Number(row.verified_at),
    createdAt: Number(row.created_at),
    issuer: row.issuer ?? null,
    profileSealed: row.profile ?? null,
  };
}

function identityRow(identity: StoredIdentity) {
  return {
    id: identity.id,
    tenant_id: identity.tenantId,
    account_id: identity.accountId,
    kind: identity.kind,
    lookup_hash: identity.lookupHash,
    value: identity.valueSealed,
    verified_at: identity.verifiedAt,
    created_at: identity.createdAt,
    issuer: identity.issuer,
    profile: identity.profileSealed,
  };
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, settings: JSON.parse(row.settings), createdAt: Number(row.created_at) };
}

/** Compare-and-set attempts before an update gives up (only under a storm of concurrent writes to one tenant). */
const TENANT_UPDATE_ATTEMPTS = 20;

function tenantStore({ db }: SqlDatabase): TenantStore {
  const insert = (tenant: Tenant) =>
    db
      .insertInto("tenants")
      .values({ id: tenant.id, name: tenant.name, settings: JSON.stringify(tenant.settings), created_at: tenant.createdAt })
      .execute();
  return {
    async get(id) {
      const row = await db.selectFrom("tenants").selectAll().where("id", "=", id).executeTakeFirst();
      return row && toTenant(row);
    },
    async ensure(tenant) {
      try {
        await insert(tenant);
      } catch (error) {
        if (!isUniqueViolation(error)) throw error; // another instance created it first
      }
    },
    async create(tenant) {
      try {
        await insert(tenant);
        return true;
      } catch (error) {
        if (isUniqueViolation(error)) return false;
        throw error;
      }
    },
    async list({ afterId, limit }) {
      let query = db.selectFrom("tenants").selectAll().orderBy("id").limit(limit);
      if (afterId !== undefined) query = query.where("id", ">", afterId);
      return (await query.execute()).map(toTenant);
    },
    async update(id, change) {
      for (let attempt = 0; attempt < TENANT_UPDATE_ATTEMPTS; attempt++) {
        const row = await db.selectFrom("tenants").selectAll().where("id", "=", id).executeTakeFirst();
        if (!row) return undefined;
        const next = change(toTenant(row));
        const result = await db
          .updateTable("tenants")
          .set((eb) => ({ name: next.name, settings: JSON.stringify(next.settings), version: eb("version", "+", 1) }))
          .where("id", "=", id)
          .where("version", "=", row.version)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 1) return { ...toTenant(row), name: next.name, settings: next.settings };
      }
      throw new Error(`tenant ${id} is being updated concurrently; gave up after ${TENANT_UPDATE_ATTEMPTS} attempts`);
    },
  };
}

/**
 * Accounts in the main database; their wrapped data keys in the key store (read
 * by account id after the account row: one more primary-key read).
 */
function accountStore({ db }: SqlDatabase, keys: KeyStore): AccountStore {
  return {
    ...accountAdminMethods(db, toAccount, keys),
    async createAccount({ account, wrappedKey, identity, messages, consents = [], events }) {
      // The key first: a key without an account is harmless, an account without a key is not.
      await keys.put({ accountId: account.id, tenantId: account.tenantId, wrappedKey, createdAt: account.createdAt });
      try {
        await db.transaction().execute(async (trx) => {
          // The identity goes first: its unique index is what two concurrent sign-ups race on.
          await trx.insertInto("identities").values(identityRow(identity)).execute();
          await trx
            .insertInto("accounts")
            .values({
              id: account.id,
              tenant_id: account.tenantId,
              role: account.role,
              state: account.state,
              locale: account.locale,
              email_verified: account.emailVerified ? 1 : 0,
              profile: account.profileSealed,
              password_hash: account.passwordHash,
              plan: account.plan,
              plan_expires_at: account.planExpiresAt,
              plan_status: account.planStatus,
              plan_renews: account.planRenews ? 1 : 0,
              plan_reminded_for: account.planRemindedFor,
              temporary_password_until: account.temporaryPasswordUntil,
              created_at: account.createdAt,
              updated_at: account.updatedAt,
            })
            .execute();
          await insertMessages(trx, messages);
          await insertConsents(trx, consents);
          await insertEvents(trx, events);
        });
      } catch (error) {
        // No account: drop its key (best effort; an orphan key is harmless).
        await keys.delete([account.id]).catch(() => {});
        if (isUniqueViolation(error)) throw new DuplicateIdentityError();
        throw error;
      }
    },

    async findByIdentity(tenantId, kind, lookupHash) {
      // The identity and its account in one read (one database), then the key (the key store's).
      const row = await db
        .selectFrom("identities")
        .innerJoin("accounts", (join) => join.onRef("accounts.id", "=", "identities.account_id").onRef("accounts.tenant_id", "=", "identities.tenant_id"))
        .selectAll("accounts")
        .select([
          "identities.id as identity_id",
          "identities.value as identity_value",
          "identities.verified_at as identity_verified_at",
          "identities.created_at as identity_created_at",
          "identities.issuer as identity_issuer",
          "identities.profile as identity_profile",
        ])
        .where("identities.tenant_id", "=", tenantId)
        .where("identities.kind", "=", kind)
        .where("identities.lookup_hash", "=", lookupHash)
        .executeTakeFirst();
      // An unknown address reads a key too: the same two reads as a known one, so the time
      // of a lookup does not tell whether an address exists (no enumeration by timing).
      const wrappedKey = await keys.get(row?.id ?? "");
      // No key, no account: an erased account's rows (a restored backup, an erasure under way) are gone.
      if (!row || wrappedKey === undefined) return undefined;
      const { identity_id, identity_value, identity_verified_at, identity_created_at, identity_issuer, identity_profile, ...account } = row;
      const identity = toIdentity({
        id: identity_id,
        tenant_id: account.tenant_id,
        account_id: account.id,
        kind,
        lookup_hash: lookupHash,
        value: identity_value,
        verified_at: identity_verified_at,
        created_at: identity_created_at,
        issuer: identity_issuer,
        profile: identity_profile,
      });
      return { identity, account: toAccount(account), wrappedKey };
    },

    async getAccount(tenantId, accountId) {
      // Two primary-key reads at once, in two stores; the key is used only if the account is the tenant's.
      const [row, wrappedKey] = await Promise.all([
        db.selectFrom("accounts").selectAll().where("id", "=", accountId).where("tenant_id", "=", tenantId).executeTakeFirst(),
        keys.get(accountId),
      ]);
      // No key, no account: an erased account's rows (a restored backup, an erasure under way) are gone.
      if (!row || wrappedKey === undefined) return undefined;
      return { account: toAccount(row), wrappedKey };
    },

    async listIdentities(accountId) {
      const rows = await db.selectFrom("identities").selectAll().where("account_id", "=", accountId).orderBy("created_at").execute();
      return rows.map(toIdentity);
    },

    async setRole({ tenantId, accountId, role, at, events }) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable("accounts")
          .set({ role, updated_at: at })
          .where("id", "=", accountId)
          .where("tenant_id", "=", tenantId)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await insertEvents(trx, events);
        return true;
      });
    },

    async countAccounts({ tenantId, role, state }) {
      let query = db
        .selectFrom("accounts")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("tenant_id", "=", tenantId)
        .where("role", "=", role);
      if (state !== undefined) query = query.where("state", "=", state);
      return Number((await query.executeTakeFirstOrThrow()).n);
    },

    async markIdentityVerified({ identityId, accountId, at, state, events }) {
      const unknownIdentity = new Error("unknown identity: roll back");
      try {
        return await db.transaction().execute(async (trx) => {
          // The account row first, as the purge and erasure lock it: one lock order, so a
          // verification racing a purge on MySQL waits instead of deadlocking.
          await trx.updateTable("accounts").set({ state, updated_at: at }).where("id", "=", accountId).execute();
          const result = await trx
            .updateTable("identities")
            .set({ verified_at: at })
            .where("id", "=", identityId)
            .where("account_id", "=", accountId)
            .executeTakeFirst();
          if (Number(result.numUpdatedRows) === 0) throw unknownIdentity;
          // Only an email identity's proof says the account's email is verified.
          const identity = await trx.selectFrom("identities").select("kind").where("id", "=", identityId).executeTakeFirstOrThrow();
          if (Number(identity.kind) === IdentityKind.EMAIL) await trx.updateTable("accounts").set({ email_verified: 1 }).where("id", "=", accountId).execute();
          await insertEvents(trx, events);
          return true;
        });
      } catch (error) {
        if (error === unknownIdentity) return false;
        throw error;
      }
    },

    async addIdentity({ tenantId, accountId, identity, retire = [], profile, messages = [], at, events }) {
      const refused = new Error("refused: roll back");
      try {
        return await db.transaction().execute(async (trx) => {
          // The account row first (its lock, as removeIdentity and erasure take it), then the
          // identity, whose unique index decides who holds a value: never moved, never twice.
          let account = trx.updateTable("accounts").set({ updated_at: at }).where("id", "=", accountId).where("tenant_id", "=", tenantId);
          if (profile) {
            account = trx
              .updateTable("accounts")
              .set({ updated_at: at, profile: profile.sealed, ...(profile.emailVerified ? { email_verified: 1 } : {}) })
              .where("id", "=", accountId)
              .where("tenant_id", "=", tenantId)
              .where("profile", "=", profile.expectedSealed);
          }
          if (Number((await account.executeTakeFirst()).numUpdatedRows) !== 1) throw refused;
          await trx.insertInto("identities").values(identityRow(identity)).execute();
          if (retire.length > 0)
            await trx
              .deleteFrom("identities")
              .where("account_id", "=", accountId)
              .where("id", "in", [...retire])
              .execute();
          await insertMessages(trx, messages);
          await insertEvents(trx, events);
          return true;
        });
      } catch (error) {
        if (error === refused) return false;
        if (isUniqueViolation(error)) throw new DuplicateIdentityError();
        throw error;
      }
    },

    async setIdentityProfile({ accountId, identityId, profileSealed, at }) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable("identities")
          .set({ profile: profileSealed })
          .where("id", "=", identityId)
          .where("account_id", "=", accountId)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await trx.updateTable("accounts").set({ updated_at: at }).where("id", "=", accountId).execute();
        return true;
      });
    },

    async setPasswordHash(accountId, passwordHash, at, endSessions, events) {
      if (!endSessions && !events?.length) {
        await db.updateTable("accounts").set({ password_hash: passwordHash, updated_at: at }).where("id", "=", accountId).execute();
        return;
      }
      await withDeadlockRetry(() =>
        db.transaction().execute(async (trx) => {
          await trx
            .updateTable("accounts")
            .set({ password_hash: passwordHash, temporary_password_until: null, updated_at: at })
            .where("id", "=", accountId)
            .execute();
          const row = await trx.selectFrom("accounts").select("tenant_id").where("id", "=", accountId).executeTakeFirst();
          if (row && endSessions) await queueRevocation(trx, { tenantId: row.tenant_id, accountId, at, request: endSessions });
          if (row) await insertEvents(trx, events);
        }),
      );
    },

    async removeIdentity({ accountId, identityId, at, profile, events }) {
      return db.transaction().execute(async (trx) => {
        // A no-op update takes the account row's lock (MySQL; SQLite serializes writers):
        // concurrent removals from one account queue here, so each sees the other's result.
        await trx
          .updateTable("accounts")
          .set((eb) => ({ updated_at: eb.ref("updated_at") }))
          .where("id", "=", accountId)
          .execute();
        const identities = await trx.selectFrom("identities").select(["id", "verified_at"]).where("account_id", "=", accountId).execute();
        const target = identities.find((i) => i.id === identityId);
        if (!target) return "not_found";
        if (target.verified_at !== null && !identities.some((i) => i.id !== identityId && i.verified_at !== null)) return "last_verified";
        if (profile) {
          const changed = await trx
            .updateTable("accounts")
            .set({ profile: profile.sealed, email_verified: profile.emailVerified ? 1 : 0 })
            .where("id", "=", accountId)
            .where("profile", "=", profile.expectedSealed)
            .executeTakeFirst();
          if (Number(changed.numUpdatedRows) !== 1) return "stale";
        }
        await trx.deleteFrom("identities").where("id", "=", identityId).where("account_id", "=", accountId).execute();
        await trx.updateTable("accounts").set({ updated_at: at }).where("id", "=", accountId).execute();
        await insertEvents(trx, events);
        return "removed";
      });
    },

    async purgeUnverified({ tenantId, createdBefore, limit }) {
      // Served by the accounts_tenant_state_created index: a range, never a scan of verified accounts.
      const candidates = await db
        .selectFrom("accounts")
        .select("id")
        .where("tenant_id", "=", tenantId)
        .where("state", "=", AccountState.PENDING_VERIFICATION)
        .where("created_at", "<", createdBefore)
        .orderBy("created_at")
        .limit(limit)
        .execute();
      const deleted: string[] = [];
      for (const { id } of candidates) {
        const gone = await db.transaction().execute(async (trx) => {
          // Conditional: an account verified since the select above stays.
          const result = await trx
            .deleteFrom("accounts")
            .where("id", "=", id)
            .where("state", "=", AccountState.PENDING_VERIFICATION)
            .where("email_verified", "=", 0)
            .executeTakeFirst();
          if (Number(result.numDeletedRows) !== 1) return false;
          await deleteAccountRows(trx, id);
          return true;
        });
        if (gone) deleted.push(id);
      }
      // After the rows: a key left by a failure here is harmless, an account without one is not.
      await keys.delete(deleted);
      return deleted;
    },

    async purgeGuests({ tenantId, createdBefore, limit, at }) {
      // Served by identities_kind_created (0010): a range over the tenant's old guest identities.
      // Only guest-only accounts (the other identities found through identities_account), so that
      // fewer than `limit` means nothing more is due.
      const candidates = await db
        .selectFrom("identities as g")
        .select("g.account_id")
        .where("g.tenant_id", "=", tenantId)
        .where("g.kind", "=", IdentityKind.GUEST)
        .where("g.created_at", "<", createdBefore)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom("identities as o").select("o.id").whereRef("o.account_id", "=", "g.account_id").where("o.kind", "!=", IdentityKind.GUEST))),
        )
        .orderBy("g.created_at")
        .limit(limit)
        .execute();
      const deleted: string[] = [];
      for (const { account_id: id } of candidates) {
        const gone = await db.transaction().execute(async (trx) => {
          // The account row's lock first (as addIdentity takes it): an upgrade racing the purge
          // either commits first (and the account is kept) or waits and finds it gone.
          const locked = await trx
            .updateTable("accounts")
            .set((eb) => ({ updated_at: eb.ref("updated_at") }))
            .where("id", "=", id)
            .executeTakeFirst();
          if (Number(locked.numUpdatedRows) !== 1) return false;
          const others = await trx
            .selectFrom("identities")
            .select("id")
            .where("account_id", "=", id)
            .where("kind", "!=", IdentityKind.GUEST)
            .limit(1)
            .execute();
          if (others.length > 0) return false;
          await trx.deleteFrom("accounts").where("id", "=", id).execute();
          await deleteAccountRows(trx, id);
          // Its sessions end everywhere, as an erasure's do (src/domain/revocations.ts).
          await queueRevocation(trx, { tenantId, accountId: id, at, request: { reason: "erased" } });
          return true;
        });
        if (gone) deleted.push(id);
      }
      // After the rows: a key left by a failure here is harmless, an account without one is not.
      await keys.delete(deleted);
      return deleted;
    },

    async deleteAccountRows(accountIds) {
      const present = await presentAccountIds(db, accountIds);
      for (const id of present) await db.transaction().execute((trx) => deleteAccountRows(trx, id));
      return present;
    },

    async updateProfile({ tenantId, accountId, expectedProfileSealed, profileSealed, locale, at, events }) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable("accounts")
          .set({ profile: profileSealed, locale, updated_at: at })
          .where("id", "=", accountId)
          .where("tenant_id", "=", tenantId)
          .where("profile", "=", expectedProfileSealed)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await insertEvents(trx, events);
        return true;
      });
    },

    async changeEmail({ accountId, identityId, lookupHash, valueSealed, previousProfileSealed, profileSealed, at, messages, verified = true, events }) {
      const stale = new Error("stale");
      try {
        await db.transaction().execute(async (trx) => {
          // The identity's unique index is the final arbiter of who holds an address.
          const identity = await trx
            .updateTable("identities")
            .set({ lookup_hash: lookupHash, value: valueSealed, verified_at: verified ? at : null })
            .where("id", "=", identityId)
            .where("account_id", "=", accountId)
            .executeTakeFirst();
          if (Number(identity.numUpdatedRows) === 0) throw stale;
          // Compare-and-set on the sealed profile: a concurrent profile update is never lost.
          const account = await trx
            .updateTable("accounts")
            .set({ profile: profileSealed, email_verified: verified ? 1 : 0, updated_at: at })
            .where("id", "=", accountId)
            .where("profile", "=", previousProfileSealed)
            .executeTakeFirst();
          if (Number(account.numUpdatedRows) === 0) throw stale;
          await insertMessages(trx, messages);
          await insertEvents(trx, events);
        });
        return true;
      } catch (error) {
        if (error === stale) return false;
        if (isUniqueViolation(error)) throw new DuplicateIdentityError();
        throw error;
      }
    },
  };
}

/**
 * The durable stores over the main database and the key store's database:
 * another database (KEYSTORE_MYSQL_URL, keys.sqlite) or its own connection pool
 * to the main one — never the same pool, since an account's row lock may be held
 * while its key is read.
 */
export function createSqlStores(database: SqlDatabase, keyDatabase: SqlDatabase): DurableStores {
  const keys = createSqlKeyStore(keyDatabase);
  // Every port answers with the domain's errors (src/domain/ports/errors.ts).
  const ported = <T extends object>(port: T) => translatingErrors(port, translateSqlError);
  return {
    tenants: ported(tenantStore(database)),
    accounts: ported(accountStore(database, keys)),
    keys: ported(keys),
    apiKeys: ported(createApiKeyStore(database)),
    socialProviders: ported(createSqlSocialProviderStore(database)),
    outbox: ported(createSqlOutboxStore(database)),
    audit: ported(createSqlAuditStore(database)),
    consents: ported(createSqlConsentStore(database)),
    revocations: ported(createSqlRevocationStore(database.db)),
    signingKeys: ported(createSqlSigningKeyStore(database.db)),
    secondFactors: ported(createSqlSecondFactorStore(database)),
    events: ported(createSqlEventStore(database.db)),
    webhooks: ported(createSqlWebhookStore(database.db)),
    hooks: ported(createSqlHookStore(database.db)),
    templates: ported(createSqlTemplateStore(database.db)),
    async ping() {
      const [main, keyStore] = await Promise.all([database.ping(), keyDatabase.ping()]);
      return main && keyStore;
    },
    async close() {
      await Promise.all([database.close(), keyDatabase.close()]);
    },
  };
}
