// The DurableStores contract (src/domain/ports/), run against every durable
// implementation: each *.test.ts next to this file calls describeDurableStores
// with a way to open a freshly migrated store. `raw` is the same database seen
// without the stores, to check what was (and was not) written.
import { randomBytes, randomUUID } from "node:crypto";
import type { UntypedDatabase } from "../../src/store/sql/schema.ts";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AccountUpdate, DuplicateIdentityError, type StoredAccount, type StoredIdentity } from "../../src/domain/ports/accounts.ts";
import type { OutboxMessage } from "../../src/domain/ports/outbox.ts";
import type { DurableStores } from "../../src/domain/ports/stores.ts";
import { AccountState, IdentityKind, Role, type Tenant } from "../../src/domain/types.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";

export interface DurableHarness {
  stores: DurableStores;
  raw: UntypedDatabase;
  /** The key store's database (account_keys, erasure_ledger): `raw` itself, or another database. */
  rawKeys: UntypedDatabase;
  close(): Promise<void>;
}

/** 2030-01-01T00:00:00Z: well past 2^32, so BIGINT columns are really exercised. */
const T0 = Date.UTC(2030, 0, 1);

const lookupHash = () => randomBytes(32).toString("hex");

function tenant(id: string, name = `Tenant ${id}`): Tenant {
  return {
    id,
    name,
    settings: {
      ...DEFAULT_TENANT_SETTINGS,
      passwordMinLength: 10,
      sessionIdleTimeoutMs: 1_800_000,
      linkBaseUrl: "https://id.example.com",
    },
    createdAt: T0,
  };
}

interface SignUp {
  account: StoredAccount;
  wrappedKey: string;
  identity: StoredIdentity;
  messages: OutboxMessage[];
}

function signUp(tenantId: string, hash: string, options: { kind?: number; messages?: number; createdAt?: number } = {}): SignUp {
  const accountId = randomUUID();
  const createdAt = options.createdAt ?? T0;
  return {
    account: {
      id: accountId,
      tenantId,
      role: Role.USER,
      state: AccountState.PENDING_VERIFICATION,
      locale: "fr",
      emailVerified: false,
      profileSealed: `profile-${accountId}`,
      passwordHash: `$argon2id$v=19$m=19456,t=2,p=1$${accountId}`,
      plan: "free",
      planExpiresAt: null,
      planStatus: 0,
      planRenews: false,
      planRemindedFor: null,
      temporaryPasswordUntil: null,
      createdAt,
      updatedAt: createdAt,
    },
    wrappedKey: `wrapped-${accountId}`,
    identity: {
      id: randomUUID(),
      tenantId,
      accountId,
      kind: options.kind ?? IdentityKind.EMAIL,
      lookupHash: hash,
      valueSealed: `value-${accountId}`,
      verifiedAt: null,
      createdAt,
      issuer: null,
      profileSealed: null,
    },
    messages: Array.from({ length: options.messages ?? 1 }, (_, i) => ({
      id: randomUUID(),
      tenantId,
      accountId,
      kind: i === 0 ? "verify_email" : "welcome",
      payloadSealed: `payload-${i}-${accountId}`,
      createdAt: createdAt + i,
    })),
  };
}

function message(createdAt: number, overrides: Partial<OutboxMessage> = {}): OutboxMessage {
  const id = randomUUID();
  return { id, tenantId: "outbox-tenant", accountId: randomUUID(), kind: "verify_email", payloadSealed: `payload-${id}`, createdAt, ...overrides };
}

export function describeDurableStores(name: string, open: () => Promise<DurableHarness>): void {
  describe(`DurableStores contract: ${name}`, () => {
    let h: DurableHarness;
    let tenantId: string;

    beforeAll(async () => {
      h = await open();
    });
    afterAll(async () => {
      await h?.close();
    });
    beforeEach(() => {
      // Every test works in its own tenant, so counts are not disturbed by other tests.
      tenantId = `t-${randomUUID()}`;
    });

    const count = async (table: string, column: string, value: string): Promise<number> => {
      const row = await (table === "account_keys" ? h.rawKeys : h.raw)
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as("n"))
        .where(column, "=", value)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };
    // Drivers return rows of their own shape (node:sqlite: null-prototype objects): compare plain copies.
    const plain = (row: Record<string, unknown>) => ({ ...row });
    const outboxRow = async (id: string) => plain(await h.raw.selectFrom("outbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow());

    /** A phone identity for the account (not written). */
    const phoneOf = (s: SignUp, verifiedAt: number | null, createdAt = T0 + 1): StoredIdentity => ({
      ...s.identity,
      id: randomUUID(),
      kind: IdentityKind.PHONE,
      lookupHash: lookupHash(),
      valueSealed: `phone-${randomUUID()}`,
      verifiedAt,
      createdAt,
    });
    /** Adds a phone identity to the account through the port. */
    const addIdentity = async (s: SignUp, verifiedAt: number | null, createdAt = T0 + 1): Promise<StoredIdentity> => {
      const identity = phoneOf(s, verifiedAt, createdAt);
      expect(await h.stores.accounts.addIdentity({ tenantId: s.account.tenantId, accountId: s.account.id, identity, at: createdAt })).toBe(true);
      return identity;
    };

    describe("migrations", () => {
      it("are idempotent: running them again applies nothing and changes nothing", async () => {
        const before = await h.raw.selectFrom("kysely_migration").select("name").orderBy("name").execute();
        expect(before.map((r) => r.name)).toEqual(expect.arrayContaining(["0001_foundation", "0003_administration"]));
        expect(await migrateToLatest(h.raw)).toEqual([]);
        expect(await migrateToLatest(h.raw)).toEqual([]);
        const after = await h.raw.selectFrom("kysely_migration").select("name").orderBy("name").execute();
        expect(after).toEqual(before);
        // The stores still work on the re-migrated schema.
        await h.stores.tenants.ensure(tenant(tenantId));
        expect((await h.stores.tenants.get(tenantId))?.id).toBe(tenantId);
      });

      it("answers ping()", async () => {
        expect(await h.stores.ping()).toBe(true);
      });
    });

    describe("tenants", () => {
      it("get() returns undefined for an unknown tenant", async () => {
        expect(await h.stores.tenants.get(tenantId)).toBeUndefined();
      });

      it("ensure() creates the tenant and get() returns it as stored", async () => {
        await h.stores.tenants.ensure(tenant(tenantId));
        expect(await h.stores.tenants.get(tenantId)).toStrictEqual(tenant(tenantId));
      });

      it("ensure() never overwrites an existing tenant", async () => {
        await h.stores.tenants.ensure(tenant(tenantId, "Original"));
        const changed = tenant(tenantId, "Changed");
        changed.settings.inviteOnly = true;
        changed.createdAt = T0 + 1;
        await h.stores.tenants.ensure(changed);
        expect(await h.stores.tenants.get(tenantId)).toStrictEqual(tenant(tenantId, "Original"));
        expect(await count("tenants", "id", tenantId)).toBe(1);
      });

      it("ensure() called by several instances at once creates the tenant once, without error", async () => {
        await Promise.all(Array.from({ length: 5 }, (_, i) => h.stores.tenants.ensure(tenant(tenantId, `Racer ${i}`))));
        expect(await count("tenants", "id", tenantId)).toBe(1);
        expect((await h.stores.tenants.get(tenantId))?.name).toMatch(/^Racer [0-4]$/);
      });
    });

    describe("accounts", () => {
      it("createAccount writes the account, its key, its identity and its messages", async () => {
        const s = signUp(tenantId, lookupHash(), { messages: 2 });
        await h.stores.accounts.createAccount(s);

        expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, s.identity.lookupHash)).toStrictEqual({
          identity: s.identity,
          account: s.account,
          wrappedKey: s.wrappedKey,
        });
        expect(await h.stores.accounts.getAccount(tenantId, s.account.id)).toStrictEqual({ account: s.account, wrappedKey: s.wrappedKey });
        expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([s.identity]);

        const queued = await h.raw.selectFrom("outbox").selectAll().where("account_id", "=", s.account.id).orderBy("created_at").execute();
        expect(queued.map(plain)).toStrictEqual(
          s.messages.map((m) => ({
            id: m.id,
            tenant_id: tenantId,
            account_id: s.account.id,
            kind: m.kind,
            status: "pending",
            attempts: 0,
            next_attempt_at: m.createdAt,
            locked_until: 0,
            lock_owner: null,
            last_error: null,
            last_error_class: null,
            failed_at: null,
            queued_at: null,
            payload: m.payloadSealed,
            created_at: m.createdAt,
            sent_at: null,
          })),
        );
      });

      it("createAccount with no messages queues nothing", async () => {
        const s = signUp(tenantId, lookupHash(), { messages: 0 });
        await h.stores.accounts.createAccount(s);
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual(s.account);
        expect(await count("outbox", "account_id", s.account.id)).toBe(0);
      });

      it("a second createAccount with the same (tenant, kind, lookup) throws DuplicateIdentityError and writes nothing", async () => {
        const hash = lookupHash();
        const first = signUp(tenantId, hash);
        const second = signUp(tenantId, hash, { messages: 2 });
        await h.stores.accounts.createAccount(first);

        const error = await h.stores.accounts.createAccount(second).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(DuplicateIdentityError);

        expect(await count("accounts", "id", second.account.id)).toBe(0);
        expect(await count("account_keys", "account_id", second.account.id)).toBe(0);
        expect(await count("identities", "id", second.identity.id)).toBe(0);
        expect(await count("identities", "account_id", second.account.id)).toBe(0);
        expect(await count("outbox", "account_id", second.account.id)).toBe(0);
        for (const m of second.messages) expect(await count("outbox", "id", m.id)).toBe(0);

        // The first sign-up is untouched.
        expect(await count("accounts", "tenant_id", tenantId)).toBe(1);
        expect(await count("outbox", "tenant_id", tenantId)).toBe(1);
        expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, hash)).toStrictEqual({
          identity: first.identity,
          account: first.account,
          wrappedKey: first.wrappedKey,
        });
      });

      it("the same lookup hash is allowed in another tenant and for another kind", async () => {
        const hash = lookupHash();
        const otherTenant = `${tenantId}-other`;
        const a = signUp(tenantId, hash);
        const b = signUp(otherTenant, hash);
        const c = signUp(tenantId, hash, { kind: IdentityKind.PHONE });
        await h.stores.accounts.createAccount(a);
        await h.stores.accounts.createAccount(b);
        await h.stores.accounts.createAccount(c);

        expect((await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, hash))?.account.id).toBe(a.account.id);
        expect((await h.stores.accounts.findByIdentity(otherTenant, IdentityKind.EMAIL, hash))?.account.id).toBe(b.account.id);
        expect((await h.stores.accounts.findByIdentity(tenantId, IdentityKind.PHONE, hash))?.account.id).toBe(c.account.id);
      });

      it("twenty concurrent sign-ups with one lookup hash produce exactly one account", async () => {
        const hash = lookupHash();
        const attempts = Array.from({ length: 20 }, () => signUp(tenantId, hash));
        const results = await Promise.allSettled(attempts.map((s) => h.stores.accounts.createAccount(s)));

        const fulfilled = results.flatMap((r, i) => (r.status === "fulfilled" ? [attempts[i]!] : []));
        const rejected = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
        expect(fulfilled).toHaveLength(1);
        expect(rejected).toHaveLength(19);
        for (const reason of rejected) expect(reason).toBeInstanceOf(DuplicateIdentityError);

        const winner = fulfilled[0]!;
        expect(await count("accounts", "tenant_id", tenantId)).toBe(1);
        expect(await count("account_keys", "tenant_id", tenantId)).toBe(1);
        expect(await count("identities", "tenant_id", tenantId)).toBe(1);
        expect(await count("outbox", "tenant_id", tenantId)).toBe(1);
        expect(await count("outbox", "account_id", winner.account.id)).toBe(1);
        expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, hash)).toStrictEqual({
          identity: winner.identity,
          account: winner.account,
          wrappedKey: winner.wrappedKey,
        });
      });

      it("findByIdentity and getAccount are confined to their tenant", async () => {
        const s = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        const otherTenant = `${tenantId}-other`;
        await h.stores.accounts.createAccount(signUp(otherTenant, lookupHash()));

        expect(await h.stores.accounts.getAccount(otherTenant, s.account.id)).toBeUndefined();
        expect(await h.stores.accounts.findByIdentity(otherTenant, IdentityKind.EMAIL, s.identity.lookupHash)).toBeUndefined();
        expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.PHONE, s.identity.lookupHash)).toBeUndefined();
        expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, lookupHash())).toBeUndefined();
        expect(await h.stores.accounts.getAccount(tenantId, randomUUID())).toBeUndefined();
        // ...while the owning tenant still sees it.
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account.id).toBe(s.account.id);
      });

      it("listIdentities lists an account's identities oldest first, and nobody else's", async () => {
        const s = signUp(tenantId, lookupHash(), { createdAt: T0 + 10 });
        await h.stores.accounts.createAccount(s);
        await h.stores.accounts.createAccount(signUp(tenantId, lookupHash()));
        const older = await addIdentity(s, null, T0);

        expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([older, s.identity]);
        expect(await h.stores.accounts.listIdentities(randomUUID())).toStrictEqual([]);
      });

      it("markIdentityVerified sets verified_at, the state and email_verified", async () => {
        const s = signUp(tenantId, lookupHash());
        const bystander = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        await h.stores.accounts.createAccount(bystander);

        const at = T0 + 60_000;
        expect(await h.stores.accounts.markIdentityVerified({ identityId: s.identity.id, accountId: s.account.id, at, state: AccountState.ACTIVE })).toBe(true);

        expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([{ ...s.identity, verifiedAt: at }]);
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual({
          ...s.account,
          state: AccountState.ACTIVE,
          emailVerified: true,
          updatedAt: at,
        });
        // Nothing else changed.
        expect(await h.stores.accounts.getAccount(tenantId, bystander.account.id)).toStrictEqual({
          account: bystander.account,
          wrappedKey: bystander.wrappedKey,
        });
        expect(await h.stores.accounts.listIdentities(bystander.account.id)).toStrictEqual([bystander.identity]);
      });

      it("markIdentityVerified moves the account to the requested state (e.g. pending activation)", async () => {
        const s = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        const at = T0 + 1;
        expect(
          await h.stores.accounts.markIdentityVerified({ identityId: s.identity.id, accountId: s.account.id, at, state: AccountState.PENDING_ACTIVATION }),
        ).toBe(true);
        const account = (await h.stores.accounts.getAccount(tenantId, s.account.id))?.account;
        expect(account?.state).toBe(AccountState.PENDING_ACTIVATION);
        expect(account?.emailVerified).toBe(true);
      });

      it("markIdentityVerified returns true again when the identity is already verified with the same values", async () => {
        // MySQL reports "changed" rows unless asked for "found" rows: an existing identity must still answer true.
        const s = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        const input = { identityId: s.identity.id, accountId: s.account.id, at: T0 + 7, state: AccountState.ACTIVE };
        expect(await h.stores.accounts.markIdentityVerified(input)).toBe(true);
        expect(await h.stores.accounts.markIdentityVerified(input)).toBe(true);
        expect((await h.stores.accounts.listIdentities(s.account.id))[0]?.verifiedAt).toBe(T0 + 7);
      });

      it("markIdentityVerified returns false for an unknown identity and changes nothing", async () => {
        const s = signUp(tenantId, lookupHash());
        const other = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        await h.stores.accounts.createAccount(other);
        const at = T0 + 60_000;

        expect(await h.stores.accounts.markIdentityVerified({ identityId: randomUUID(), accountId: s.account.id, at, state: AccountState.ACTIVE })).toBe(false);
        // An identity that exists, but belongs to another account, is not this account's to verify.
        expect(await h.stores.accounts.markIdentityVerified({ identityId: other.identity.id, accountId: s.account.id, at, state: AccountState.ACTIVE })).toBe(
          false,
        );

        for (const x of [s, other]) {
          expect(await h.stores.accounts.getAccount(tenantId, x.account.id)).toStrictEqual({ account: x.account, wrappedKey: x.wrappedKey });
          expect(await h.stores.accounts.listIdentities(x.account.id)).toStrictEqual([x.identity]);
        }
      });

      it("markIdentityVerified of a phone identity moves the state but leaves email_verified alone", async () => {
        const s = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        const phone = await addIdentity(s, null, T0 + 2);
        expect(await h.stores.accounts.markIdentityVerified({ identityId: phone.id, accountId: s.account.id, at: T0 + 9, state: AccountState.ACTIVE })).toBe(
          true,
        );
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual({
          ...s.account,
          state: AccountState.ACTIVE,
          emailVerified: false,
          updatedAt: T0 + 9,
        });
        expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([s.identity, { ...phone, verifiedAt: T0 + 9 }]);
      });

      describe("addIdentity", () => {
        it("attaches an identity of any kind with its issuer and profile, findable by its lookup, touching the update time", async () => {
          const s = signUp(tenantId, lookupHash());
          await h.stores.accounts.createAccount(s);
          const external: StoredIdentity = {
            ...phoneOf(s, T0 + 3, T0 + 3),
            kind: IdentityKind.OIDC,
            issuer: "https://issuer.example.com",
            profileSealed: "sealed-profile",
          };
          expect(await h.stores.accounts.addIdentity({ tenantId, accountId: s.account.id, identity: external, at: T0 + 3 })).toBe(true);
          expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.OIDC, external.lookupHash)).toStrictEqual({
            identity: external,
            account: { ...s.account, updatedAt: T0 + 3 },
            wrappedKey: s.wrappedKey,
          });
          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([s.identity, external]);
        });

        it("retires the named identities, sets the profile (compare-and-set) and queues messages in the same transaction", async () => {
          const guest = signUp(tenantId, lookupHash(), { kind: IdentityKind.GUEST, messages: 0 });
          await h.stores.accounts.createAccount(guest);
          const email = { ...phoneOf(guest, T0 + 5, T0 + 5), kind: IdentityKind.EMAIL };
          const notice = { ...message(T0 + 5), tenantId, accountId: guest.account.id };
          const upgrade = {
            tenantId,
            accountId: guest.account.id,
            identity: email,
            retire: [guest.identity.id],
            profile: { expectedSealed: guest.account.profileSealed, sealed: "profile-with-email", emailVerified: true },
            messages: [notice],
            at: T0 + 5,
          };
          expect(await h.stores.accounts.addIdentity(upgrade)).toBe(true);
          expect(await h.stores.accounts.listIdentities(guest.account.id)).toStrictEqual([email]);
          expect((await h.stores.accounts.getAccount(tenantId, guest.account.id))?.account).toStrictEqual({
            ...guest.account,
            profileSealed: "profile-with-email",
            emailVerified: true,
            updatedAt: T0 + 5,
          });
          expect((await outboxRow(notice.id)).payload).toBe(notice.payloadSealed);
          expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.GUEST, guest.identity.lookupHash)).toBeUndefined();
        });

        it("returns false and writes nothing for a stale profile, another tenant or an unknown account", async () => {
          const s = signUp(tenantId, lookupHash(), { messages: 0 });
          await h.stores.accounts.createAccount(s);
          const notice = { ...message(T0 + 5), tenantId, accountId: s.account.id };
          const stale = { expectedSealed: "not-the-profile", sealed: "new", emailVerified: true };
          const identity = phoneOf(s, T0 + 5);
          expect(
            await h.stores.accounts.addIdentity({
              tenantId,
              accountId: s.account.id,
              identity,
              retire: [s.identity.id],
              profile: stale,
              messages: [notice],
              at: T0 + 5,
            }),
          ).toBe(false);
          expect(await h.stores.accounts.addIdentity({ tenantId: `other-${tenantId}`, accountId: s.account.id, identity, at: T0 + 5 })).toBe(false);
          expect(await h.stores.accounts.addIdentity({ tenantId, accountId: randomUUID(), identity, at: T0 + 5 })).toBe(false);
          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([s.identity]);
          expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual(s.account);
          expect(await count("outbox", "account_id", s.account.id)).toBe(0);
          expect(await count("identities", "id", identity.id)).toBe(0);
        });

        it("throws DuplicateIdentityError and writes nothing when the value is taken, by another account or by this one", async () => {
          const owner = signUp(tenantId, lookupHash());
          const other = signUp(tenantId, lookupHash(), { messages: 0 });
          await h.stores.accounts.createAccount(owner);
          await h.stores.accounts.createAccount(other);
          const taken = await addIdentity(owner, T0 + 2);
          for (const [account, s] of [
            [other, other],
            [owner, owner],
          ] as const) {
            const copy = { ...phoneOf(s, T0 + 4), lookupHash: taken.lookupHash };
            const notice = { ...message(T0 + 4), tenantId, accountId: account.account.id };
            await expect(
              h.stores.accounts.addIdentity({
                tenantId,
                accountId: account.account.id,
                identity: copy,
                retire: [s.identity.id],
                messages: [notice],
                at: T0 + 4,
              }),
            ).rejects.toBeInstanceOf(DuplicateIdentityError);
            expect(await count("outbox", "id", notice.id)).toBe(0);
          }
          expect(await h.stores.accounts.listIdentities(other.account.id)).toStrictEqual([other.identity]);
          expect(await h.stores.accounts.listIdentities(owner.account.id)).toStrictEqual([owner.identity, taken]);
          expect((await h.stores.accounts.findByIdentity(tenantId, IdentityKind.PHONE, taken.lookupHash))?.account.id).toBe(owner.account.id);
        });

        it("lets exactly one of twenty accounts racing for one value have it", async () => {
          const racers = Array.from({ length: 20 }, () => signUp(tenantId, lookupHash(), { messages: 0 }));
          for (const r of racers) await h.stores.accounts.createAccount(r);
          const hash = lookupHash();
          const results = await Promise.allSettled(
            racers.map((r) =>
              h.stores.accounts.addIdentity({ tenantId, accountId: r.account.id, identity: { ...phoneOf(r, T0 + 1), lookupHash: hash }, at: T0 + 1 }),
            ),
          );
          expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
          for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(DuplicateIdentityError);
        });
      });

      it("setIdentityProfile replaces one identity's sealed profile, only the account's own", async () => {
        const s = signUp(tenantId, lookupHash());
        const other = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        await h.stores.accounts.createAccount(other);
        expect(await h.stores.accounts.setIdentityProfile({ accountId: s.account.id, identityId: s.identity.id, profileSealed: "p1", at: T0 + 8 })).toBe(true);
        expect(await h.stores.accounts.setIdentityProfile({ accountId: s.account.id, identityId: other.identity.id, profileSealed: "p2", at: T0 + 8 })).toBe(
          false,
        );
        expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([{ ...s.identity, profileSealed: "p1" }]);
        expect(await h.stores.accounts.listIdentities(other.account.id)).toStrictEqual([other.identity]);
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account.updatedAt).toBe(T0 + 8);
      });

      it("setPasswordHash replaces the hash and the update time of that account only", async () => {
        const s = signUp(tenantId, lookupHash());
        const bystander = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        await h.stores.accounts.createAccount(bystander);

        const at = T0 + 5_000;
        await h.stores.accounts.setPasswordHash(s.account.id, "$argon2id$v=19$m=65536,t=3,p=4$new", at);
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual({
          ...s.account,
          passwordHash: "$argon2id$v=19$m=65536,t=3,p=4$new",
          updatedAt: at,
        });
        expect((await h.stores.accounts.getAccount(tenantId, bystander.account.id))?.account).toStrictEqual(bystander.account);
      });

      describe("removeIdentity", () => {
        const verifiedSignUp = async () => {
          const s = signUp(tenantId, lookupHash());
          await h.stores.accounts.createAccount(s);
          await h.stores.accounts.markIdentityVerified({ identityId: s.identity.id, accountId: s.account.id, at: T0 + 10, state: AccountState.ACTIVE });
          const [identity] = await h.stores.accounts.listIdentities(s.account.id);
          return { s, email: identity!, account: (await h.stores.accounts.getAccount(tenantId, s.account.id))!.account };
        };

        it("removes an unverified identity, and a verified one while another verified one remains, touching the update time", async () => {
          const { s, email } = await verifiedSignUp();
          const phone = await addIdentity(s, T0 + 20);
          const pending = await addIdentity(s, null, T0 + 2);

          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: pending.id, at: T0 + 100 })).toBe("removed");
          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: phone.id, at: T0 + 200 })).toBe("removed");
          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([email]);
          expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account.updatedAt).toBe(T0 + 200);
        });

        it("refuses the last verified identity and an identity of another account, changing nothing", async () => {
          const { s, email } = await verifiedSignUp();
          const other = await verifiedSignUp();
          const pending = await addIdentity(s, null);
          const account = (await h.stores.accounts.getAccount(tenantId, s.account.id))!.account;

          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: email.id, at: T0 + 100 })).toBe("last_verified");
          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: other.email.id, at: T0 + 100 })).toBe("not_found");
          expect(await h.stores.accounts.removeIdentity({ accountId: other.s.account.id, identityId: pending.id, at: T0 + 100 })).toBe("not_found");
          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: randomUUID(), at: T0 + 100 })).toBe("not_found");
          expect(await h.stores.accounts.removeIdentity({ accountId: randomUUID(), identityId: email.id, at: T0 + 100 })).toBe("not_found");

          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([email, pending]);
          expect(await h.stores.accounts.listIdentities(other.s.account.id)).toStrictEqual([other.email]);
          expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual(account);
          expect((await h.stores.accounts.getAccount(tenantId, other.s.account.id))?.account).toStrictEqual(other.account);
        });

        it("with a profile, replaces it in the same transaction, or answers stale and changes nothing", async () => {
          const { s, email } = await verifiedSignUp();
          const phone = await addIdentity(s, T0 + 20);
          const before = (await h.stores.accounts.getAccount(tenantId, s.account.id))!.account;
          const stale = { expectedSealed: "not-it", sealed: "p2", emailVerified: false };
          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: email.id, at: T0 + 30, profile: stale })).toBe("stale");
          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([email, phone]);
          expect((await h.stores.accounts.getAccount(tenantId, s.account.id))!.account).toStrictEqual(before);
          const fresh = { expectedSealed: before.profileSealed, sealed: "no-email", emailVerified: false };
          expect(await h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: email.id, at: T0 + 40, profile: fresh })).toBe("removed");
          expect((await h.stores.accounts.getAccount(tenantId, s.account.id))!.account).toStrictEqual({
            ...before,
            profileSealed: "no-email",
            emailVerified: false,
            updatedAt: T0 + 40,
          });
          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([phone]);
        });

        it("of two concurrent removals of an account's only two verified identities, exactly one succeeds", async () => {
          for (let round = 0; round < 30; round++) {
            const { s, email } = await verifiedSignUp();
            const phone = await addIdentity(s, T0 + 20);
            const results = await Promise.all(
              [email, phone].map((i) => h.stores.accounts.removeIdentity({ accountId: s.account.id, identityId: i.id, at: T0 + 100 })),
            );
            expect([...results].sort()).toStrictEqual(["last_verified", "removed"]);
            const left = await h.stores.accounts.listIdentities(s.account.id);
            expect(left).toHaveLength(1);
            expect(left[0]!.verifiedAt).not.toBeNull();
          }
        });
      });

      describe("purgeUnverified", () => {
        const rowsOf = async (accountId: string) => ({
          accounts: await count("accounts", "id", accountId),
          keys: await count("account_keys", "account_id", accountId),
          identities: await count("identities", "account_id", accountId),
          outbox: await count("outbox", "account_id", accountId),
        });
        const none = { accounts: 0, keys: 0, identities: 0, outbox: 0 };

        it("deletes the tenant's accounts pending verification created before the cutoff, oldest first, with their key, identities and messages", async () => {
          const cutoff = T0 + 1_000;
          const old = [T0 + 2, T0, T0 + 1].map((createdAt) => signUp(tenantId, lookupHash(), { createdAt, messages: 2 }));
          const atCutoff = signUp(tenantId, lookupHash(), { createdAt: cutoff });
          const verified = signUp(tenantId, lookupHash(), { createdAt: T0 });
          const awaitingActivation = signUp(tenantId, lookupHash(), { createdAt: T0 });
          const otherTenant = signUp(`other-${tenantId}`, lookupHash(), { createdAt: T0 });
          for (const x of [...old, atCutoff, verified, awaitingActivation, otherTenant]) await h.stores.accounts.createAccount(x);
          await h.stores.accounts.markIdentityVerified({
            identityId: verified.identity.id,
            accountId: verified.account.id,
            at: T0 + 5,
            state: AccountState.ACTIVE,
          });
          await h.stores.accounts.markIdentityVerified({
            identityId: awaitingActivation.identity.id,
            accountId: awaitingActivation.account.id,
            at: T0 + 5,
            state: AccountState.PENDING_ACTIVATION,
          });
          const kept = await Promise.all([atCutoff, verified, awaitingActivation, otherTenant].map((x) => rowsOf(x.account.id)));
          expect(kept).toStrictEqual(Array(4).fill({ accounts: 1, keys: 1, identities: 1, outbox: 1 }));

          const [oldest, second, third] = [old[1]!, old[2]!, old[0]!];
          expect(await h.stores.accounts.purgeUnverified({ tenantId, createdBefore: cutoff, limit: 2 })).toStrictEqual([oldest.account.id, second.account.id]);
          expect(await h.stores.accounts.purgeUnverified({ tenantId, createdBefore: cutoff, limit: 2 })).toStrictEqual([third.account.id]);
          expect(await h.stores.accounts.purgeUnverified({ tenantId, createdBefore: cutoff, limit: 2 })).toStrictEqual([]);

          for (const x of old) {
            expect(await rowsOf(x.account.id)).toStrictEqual(none);
            expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, x.identity.lookupHash)).toBeUndefined();
          }
          expect(await Promise.all([atCutoff, verified, awaitingActivation, otherTenant].map((x) => rowsOf(x.account.id)))).toStrictEqual(kept);
          // The purged address is free again.
          await h.stores.accounts.createAccount(signUp(tenantId, oldest.identity.lookupHash));
        });

        it("run by several instances at once, deletes each account exactly once", async () => {
          const old = Array.from({ length: 6 }, (_, i) => signUp(tenantId, lookupHash(), { createdAt: T0 + i }));
          for (const x of old) await h.stores.accounts.createAccount(x);
          const runs = await Promise.all(
            Array.from({ length: 4 }, () => h.stores.accounts.purgeUnverified({ tenantId, createdBefore: T0 + 1_000, limit: 10 })),
          );
          const deleted = runs.flat();
          expect(deleted).toHaveLength(6);
          expect(new Set(deleted)).toStrictEqual(new Set(old.map((x) => x.account.id)));
          for (const x of old) expect(await rowsOf(x.account.id)).toStrictEqual(none);
        });
      });

      describe("purgeGuests", () => {
        const rowsOf = async (accountId: string) => ({
          accounts: await count("accounts", "id", accountId),
          keys: await count("account_keys", "account_id", accountId),
          identities: await count("identities", "account_id", accountId),
        });
        const guestAt = (createdAt: number, t = tenantId) => signUp(t, lookupHash(), { kind: IdentityKind.GUEST, createdAt, messages: 0 });

        it("deletes the tenant's guest-only accounts created before the cutoff, oldest first, keeping upgraded ones", async () => {
          const cutoff = T0 + 1_000;
          const old = [T0 + 2, T0, T0 + 1].map((at) => guestAt(at));
          const recent = guestAt(cutoff);
          const upgraded = guestAt(T0);
          const otherTenant = guestAt(T0, `other-${tenantId}`);
          const email = signUp(tenantId, lookupHash(), { createdAt: T0, messages: 0 });
          for (const x of [...old, recent, upgraded, otherTenant, email]) await h.stores.accounts.createAccount(x);
          // An upgrade in progress that kept its guest identity still holds another way in: kept.
          await addIdentity(upgraded, T0 + 3);

          const [oldest, second, third] = [old[1]!, old[2]!, old[0]!];
          expect(await h.stores.accounts.purgeGuests({ tenantId, createdBefore: cutoff, limit: 2, at: T0 + 9_000 })).toStrictEqual([
            oldest.account.id,
            second.account.id,
          ]);
          expect(await h.stores.accounts.purgeGuests({ tenantId, createdBefore: cutoff, limit: 5, at: T0 + 9_000 })).toStrictEqual([third.account.id]);
          expect(await h.stores.accounts.purgeGuests({ tenantId, createdBefore: cutoff, limit: 5, at: T0 + 9_000 })).toStrictEqual([]);
          for (const x of old) expect(await rowsOf(x.account.id)).toStrictEqual({ accounts: 0, keys: 0, identities: 0 });
          // Their sessions' revocation is owed, one per purged guest.
          for (const x of old) expect(await count("pending_revocations", "account_id", x.account.id)).toBe(1);
          expect(await rowsOf(recent.account.id)).toStrictEqual({ accounts: 1, keys: 1, identities: 1 });
          expect(await rowsOf(upgraded.account.id)).toStrictEqual({ accounts: 1, keys: 1, identities: 2 });
          expect(await rowsOf(otherTenant.account.id)).toStrictEqual({ accounts: 1, keys: 1, identities: 1 });
          expect(await rowsOf(email.account.id)).toStrictEqual({ accounts: 1, keys: 1, identities: 1 });
        });

        it("run by several instances at once, deletes each guest exactly once", async () => {
          const old = Array.from({ length: 6 }, (_, i) => guestAt(T0 + i));
          for (const x of old) await h.stores.accounts.createAccount(x);
          const runs = await Promise.all(
            Array.from({ length: 4 }, () => h.stores.accounts.purgeGuests({ tenantId, createdBefore: T0 + 1_000, limit: 10, at: T0 + 9_000 })),
          );
          expect(runs.flat()).toHaveLength(6);
          expect(new Set(runs.flat())).toStrictEqual(new Set(old.map((x) => x.account.id)));
        });
      });

      it("updateProfile replaces the sealed profile, the locale and the update time of that account only", async () => {
        const s = signUp(tenantId, lookupHash());
        const bystander = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        await h.stores.accounts.createAccount(bystander);

        const at = T0 + 7_000;
        const input = { tenantId, accountId: s.account.id, expectedProfileSealed: s.account.profileSealed, profileSealed: "profile-v2", locale: "en", at };
        expect(await h.stores.accounts.updateProfile(input)).toBe(true);
        const updated = { ...s.account, profileSealed: "profile-v2", locale: "en", updatedAt: at };
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual(updated);
        expect((await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, s.identity.lookupHash))?.account).toStrictEqual(updated);
        expect((await h.stores.accounts.getAccount(tenantId, bystander.account.id))?.account).toStrictEqual(bystander.account);

        // Again from the new version.
        expect(
          await h.stores.accounts.updateProfile({ ...input, expectedProfileSealed: "profile-v2", profileSealed: "profile-v3", locale: "fr", at: at + 1 }),
        ).toBe(true);
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual({
          ...updated,
          profileSealed: "profile-v3",
          locale: "fr",
          updatedAt: at + 1,
        });
      });

      it("updateProfile returns false and writes nothing when the profile changed since it was read, or for another tenant or an unknown account", async () => {
        const s = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        const input = {
          tenantId,
          accountId: s.account.id,
          expectedProfileSealed: s.account.profileSealed,
          profileSealed: "profile-v2",
          locale: "en",
          at: T0 + 7_000,
        };

        expect(await h.stores.accounts.updateProfile({ ...input, expectedProfileSealed: "an-older-profile" })).toBe(false);
        expect(await h.stores.accounts.updateProfile({ ...input, tenantId: `other-${tenantId}` })).toBe(false);
        expect(await h.stores.accounts.updateProfile({ ...input, accountId: randomUUID() })).toBe(false);
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account).toStrictEqual(s.account);
      });

      it("updateProfile: of two writers that read the same version, exactly one wins", async () => {
        const s = signUp(tenantId, lookupHash());
        await h.stores.accounts.createAccount(s);
        const write = (profileSealed: string) =>
          h.stores.accounts.updateProfile({
            tenantId,
            accountId: s.account.id,
            expectedProfileSealed: s.account.profileSealed,
            profileSealed,
            locale: "fr",
            at: T0 + 1,
          });
        const results = await Promise.all(["profile-a", "profile-b", "profile-c"].map(write));
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = ["profile-a", "profile-b", "profile-c"][results.indexOf(true)];
        expect((await h.stores.accounts.getAccount(tenantId, s.account.id))?.account.profileSealed).toBe(winner);
      });

      describe("changeEmail", () => {
        const change = (s: SignUp, overrides: Partial<Parameters<DurableStores["accounts"]["changeEmail"]>[0]> = {}) => ({
          accountId: s.account.id,
          identityId: s.identity.id,
          lookupHash: lookupHash(),
          valueSealed: `new-value-${s.account.id}`,
          previousProfileSealed: s.account.profileSealed,
          profileSealed: `new-profile-${s.account.id}`,
          at: T0 + 90_000,
          messages: [message(T0 + 90_000, { tenantId, accountId: s.account.id, kind: "email_changed_notice" })],
          ...overrides,
        });
        const unchanged = async (...signUps: SignUp[]) => {
          for (const x of signUps) {
            expect(await h.stores.accounts.getAccount(tenantId, x.account.id)).toStrictEqual({ account: x.account, wrappedKey: x.wrappedKey });
            expect(await h.stores.accounts.listIdentities(x.account.id)).toStrictEqual([x.identity]);
            expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, x.identity.lookupHash)).toStrictEqual({
              identity: x.identity,
              account: x.account,
              wrappedKey: x.wrappedKey,
            });
          }
        };

        it("moves the identity to the new lookup hash, seals the new value and profile, and queues the messages, together", async () => {
          const s = signUp(tenantId, lookupHash(), { messages: 0 });
          const bystander = signUp(tenantId, lookupHash());
          await h.stores.accounts.createAccount(s);
          await h.stores.accounts.createAccount(bystander);
          const input = change(s);

          expect(await h.stores.accounts.changeEmail(input)).toBe(true);

          const identity = { ...s.identity, lookupHash: input.lookupHash, valueSealed: input.valueSealed, verifiedAt: input.at };
          const account = { ...s.account, profileSealed: input.profileSealed, emailVerified: true, updatedAt: input.at };
          expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, input.lookupHash)).toStrictEqual({
            identity,
            account,
            wrappedKey: s.wrappedKey,
          });
          expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, s.identity.lookupHash)).toBeUndefined();
          expect(await h.stores.accounts.listIdentities(s.account.id)).toStrictEqual([identity]);
          const queued = await h.raw.selectFrom("outbox").selectAll().where("account_id", "=", s.account.id).execute();
          expect(queued.map((row) => [row.id, row.kind, row.status, row.payload])).toStrictEqual(
            input.messages.map((m) => [m.id, "email_changed_notice", "pending", m.payloadSealed]),
          );
          await unchanged(bystander);
        });

        it("throws DuplicateIdentityError and writes nothing when another identity holds the lookup hash", async () => {
          const s = signUp(tenantId, lookupHash(), { messages: 0 });
          const holder = signUp(tenantId, lookupHash(), { messages: 0 });
          await h.stores.accounts.createAccount(s);
          await h.stores.accounts.createAccount(holder);
          const input = change(s, { lookupHash: holder.identity.lookupHash });

          const error = await h.stores.accounts.changeEmail(input).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(DuplicateIdentityError);
          await unchanged(s, holder);
          for (const m of input.messages) expect(await count("outbox", "id", m.id)).toBe(0);
        });

        it("returns false and writes nothing when the profile changed meanwhile", async () => {
          const s = signUp(tenantId, lookupHash(), { messages: 0 });
          await h.stores.accounts.createAccount(s);
          const input = change(s, { previousProfileSealed: "an-older-profile" });

          expect(await h.stores.accounts.changeEmail(input)).toBe(false);
          await unchanged(s);
          expect(await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, input.lookupHash)).toBeUndefined();
          expect(await count("outbox", "account_id", s.account.id)).toBe(0);
        });

        it("returns false and writes nothing for an identity that is not the account's", async () => {
          const s = signUp(tenantId, lookupHash(), { messages: 0 });
          const other = signUp(tenantId, lookupHash(), { messages: 0 });
          await h.stores.accounts.createAccount(s);
          await h.stores.accounts.createAccount(other);

          expect(await h.stores.accounts.changeEmail(change(s, { identityId: other.identity.id }))).toBe(false);
          expect(await h.stores.accounts.changeEmail(change(s, { identityId: randomUUID() }))).toBe(false);
          await unchanged(s, other);
          expect(await count("outbox", "account_id", s.account.id)).toBe(0);
        });

        it("lets exactly one of two accounts racing for one address have it", async () => {
          const a = signUp(tenantId, lookupHash(), { messages: 0 });
          const b = signUp(tenantId, lookupHash(), { messages: 0 });
          await h.stores.accounts.createAccount(a);
          await h.stores.accounts.createAccount(b);
          const hash = lookupHash();

          const results = await Promise.allSettled([a, b].map((s) => h.stores.accounts.changeEmail(change(s, { lookupHash: hash }))));
          expect(results.filter((r) => r.status === "fulfilled" && r.value === true)).toHaveLength(1);
          const rejected = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
          expect(rejected).toHaveLength(1);
          expect(rejected[0]).toBeInstanceOf(DuplicateIdentityError);
          const winner = (await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, hash))!.account.id;
          expect(await count("outbox", "account_id", winner)).toBe(1);
          expect(await count("outbox", "account_id", winner === a.account.id ? b.account.id : a.account.id)).toBe(0);
        });
      });

      describe("subscriptions (updateAccount's onceKey, listSubscriptionsDue)", () => {
        const DAY = 86_400_000;
        async function subscribed(at: number, fields: AccountUpdate) {
          const s = signUp(tenantId, lookupHash());
          await h.stores.accounts.createAccount(s);
          await h.stores.accounts.updateAccount({ tenantId, accountId: s.account.id, at, change: () => fields });
          return s.account.id;
        }

        it("applies a change once per key, even when the same key is retried concurrently; queues its messages with it", async () => {
          const accountId = await subscribed(T0, {});
          const onceKey = lookupHash();
          const attempt = (plan: string) =>
            h.stores.accounts.updateAccount({
              tenantId,
              accountId,
              at: T0 + 1,
              onceKey,
              change: () => ({ plan, planStatus: 2, messages: [message(T0 + 1, { tenantId, accountId, kind: "renewal_reminder" })] }),
            });
          const results = await Promise.all([attempt("basic"), attempt("pro"), attempt("team")]);
          expect(results.filter((r) => r?.replayed === true)).toHaveLength(2);
          const applied = results.find((r) => r?.replayed !== true)!.account.plan;
          expect((await h.stores.accounts.getAccount(tenantId, accountId))!.account).toMatchObject({ plan: applied, planStatus: 2 });
          expect(await count("outbox", "account_id", accountId)).toBe(2); // the sign-up's message and one change's
          // Another key applies.
          const other = await h.stores.accounts.updateAccount({ tenantId, accountId, at: T0 + 2, onceKey: lookupHash(), change: () => ({ plan: "free" }) });
          expect(other?.replayed).toBeUndefined();
          expect(other?.account.plan).toBe("free");
        });

        it("lists what is due: ended trials and non-renewing periods; renewing active periods ending soon and not reminded for that end", async () => {
          const at = T0 + 100 * DAY;
          const ids = {
            trialEnded: await subscribed(T0, { plan: "pro", planStatus: 1, planExpiresAt: at - 1 }),
            canceledEnded: await subscribed(T0, { plan: "pro", planStatus: 4, planExpiresAt: at, planRenews: false }),
            renewingEnded: await subscribed(T0, { plan: "pro", planStatus: 2, planExpiresAt: at - 1, planRenews: true }),
            trialLater: await subscribed(T0, { plan: "pro", planStatus: 1, planExpiresAt: at + 1 }),
            expired: await subscribed(T0, { plan: "free", planStatus: 5, planExpiresAt: at - 5 }),
            soon: await subscribed(T0, { plan: "pro", planStatus: 2, planExpiresAt: at + 10 * DAY, planRenews: true }),
            remindedSoon: await subscribed(T0, { plan: "pro", planStatus: 2, planExpiresAt: at + 11 * DAY, planRenews: true, planRemindedFor: at + 11 * DAY }),
            remindedEarlierPeriod: await subscribed(T0, {
              plan: "pro",
              planStatus: 2,
              planExpiresAt: at + 12 * DAY,
              planRenews: true,
              planRemindedFor: at - 20 * DAY,
            }),
            far: await subscribed(T0, { plan: "pro", planStatus: 2, planExpiresAt: at + 40 * DAY, planRenews: true }),
            pastDueSoon: await subscribed(T0, { plan: "pro", planStatus: 3, planExpiresAt: at + 10 * DAY, planRenews: true }),
          };
          const due = async (kind: "expiry" | "reminder") =>
            new Set(
              await h.stores.accounts.listSubscriptionsDue({
                tenantId,
                kind,
                endsBy: kind === "expiry" ? at : at + 30 * DAY,
                ...(kind === "reminder" && { notBefore: at }),
                limit: 100,
              }),
            );
          expect(await due("expiry")).toEqual(new Set([ids.trialEnded, ids.canceledEnded]));
          expect(await due("reminder")).toEqual(new Set([ids.soon, ids.remindedEarlierPeriod]));
          // Paging by id: every due account exactly once.
          const first = await h.stores.accounts.listSubscriptionsDue({ tenantId, kind: "expiry", endsBy: at, limit: 1 });
          const rest = await h.stores.accounts.listSubscriptionsDue({ tenantId, kind: "expiry", endsBy: at, afterId: first[0]!, limit: 10 });
          expect(new Set([...first, ...rest])).toEqual(new Set([ids.trialEnded, ids.canceledEnded]));
          expect(first.length + rest.length).toBe(2);
        });
      });

      it("returns numbers as numbers, up to Number.MAX_SAFE_INTEGER", async () => {
        const s = signUp(tenantId, lookupHash());
        s.account.role = Role.SUPER_ADMIN;
        s.account.planExpiresAt = Number.MAX_SAFE_INTEGER;
        s.account.createdAt = 2 ** 41 + 7;
        s.account.updatedAt = 2 ** 41 + 8;
        s.identity.verifiedAt = 2 ** 42 + 9;
        s.identity.createdAt = 2 ** 41 + 7;
        await h.stores.accounts.createAccount(s);
        await h.stores.tenants.ensure(tenant(tenantId));

        const found = await h.stores.accounts.findByIdentity(tenantId, IdentityKind.EMAIL, s.identity.lookupHash);
        const { account, identity } = found!;
        for (const value of [
          account.role,
          account.state,
          account.planExpiresAt,
          account.createdAt,
          account.updatedAt,
          identity.kind,
          identity.verifiedAt,
          identity.createdAt,
        ]) {
          expect(typeof value).toBe("number");
        }
        expect(typeof account.emailVerified).toBe("boolean");
        expect(account.role).toBe(Role.SUPER_ADMIN);
        expect(account.planExpiresAt).toBe(Number.MAX_SAFE_INTEGER);
        expect(account.createdAt).toBe(2 ** 41 + 7);
        expect(account.updatedAt).toBe(2 ** 41 + 8);
        expect(identity.verifiedAt).toBe(2 ** 42 + 9);
        expect(typeof (await h.stores.tenants.get(tenantId))?.createdAt).toBe("number");

        // The raw rows too: other queries (listings, the outbox worker's tests) read them directly.
        const row = await h.raw.selectFrom("accounts").selectAll().where("id", "=", s.account.id).executeTakeFirstOrThrow();
        for (const column of ["role", "state", "email_verified", "plan_expires_at", "created_at", "updated_at"]) {
          expect(typeof row[column], column).toBe("number");
        }
        expect(row.plan_expires_at).toBe(Number.MAX_SAFE_INTEGER);
      });
    });

    describe("outbox", () => {
      beforeEach(async () => {
        // claimDue sees the whole queue: start each outbox test from an empty one.
        await h.raw.deleteFrom("outbox").execute();
      });

      it("claimDue returns due messages oldest first, up to `limit`, with their fields", async () => {
        const m2 = message(T0 + 2);
        const m0 = message(T0);
        const later = message(T0 + 100);
        const m1 = message(T0 + 1);
        await h.stores.outbox.enqueue([m2, m0, later]);
        await h.stores.outbox.enqueue([m1]);

        const first = await h.stores.outbox.claimDue({ now: T0 + 10, limit: 2, owner: "a", leaseMs: 30_000 });
        expect(first).toStrictEqual([
          { ...m0, attempts: 0, queuedAt: m0.createdAt },
          { ...m1, attempts: 0, queuedAt: m1.createdAt },
        ]);
        for (const c of first) {
          expect(typeof c.attempts).toBe("number");
          expect(typeof c.createdAt).toBe("number");
        }

        // The rest that is due; the leased ones and the not-yet-due one are not offered.
        const second = await h.stores.outbox.claimDue({ now: T0 + 10, limit: 10, owner: "b", leaseMs: 30_000 });
        expect(second).toStrictEqual([{ ...m2, attempts: 0, queuedAt: m2.createdAt }]);
        expect(await h.stores.outbox.claimDue({ now: T0 + 10, limit: 10, owner: "c", leaseMs: 30_000 })).toStrictEqual([]);

        expect(await h.stores.outbox.claimDue({ now: T0 + 100, limit: 10, owner: "c", leaseMs: 30_000 })).toStrictEqual([
          { ...later, attempts: 0, queuedAt: later.createdAt },
        ]);
      });

      it("claimDue with an empty queue returns nothing", async () => {
        expect(await h.stores.outbox.claimDue({ now: T0, limit: 10, owner: "a", leaseMs: 1000 })).toStrictEqual([]);
        await h.stores.outbox.enqueue([]);
        expect(await h.stores.outbox.claimDue({ now: T0, limit: 10, owner: "a", leaseMs: 1000 })).toStrictEqual([]);
      });

      it("a lease keeps a message from a second claimer until it expires; then it can be taken over", async () => {
        const m = message(T0);
        await h.stores.outbox.enqueue([m]);

        expect((await h.stores.outbox.claimDue({ now: T0, limit: 10, owner: "a", leaseMs: 1000 })).map((c) => c.id)).toEqual([m.id]);
        expect(await h.stores.outbox.claimDue({ now: T0, limit: 10, owner: "b", leaseMs: 1000 })).toStrictEqual([]);
        expect(await h.stores.outbox.claimDue({ now: T0 + 999, limit: 10, owner: "b", leaseMs: 1000 })).toStrictEqual([]);
        expect(await h.stores.outbox.claimDue({ now: T0 + 1000, limit: 10, owner: "b", leaseMs: 1000 })).toStrictEqual([
          { ...m, attempts: 0, queuedAt: m.createdAt },
        ]);

        const row = await outboxRow(m.id);
        expect(row.lock_owner).toBe("b");
        expect(row.locked_until).toBe(T0 + 2000);
        expect(row.status).toBe("pending");
      });

      it("concurrent claimers never lease one message twice", async () => {
        const messages = Array.from({ length: 12 }, (_, i) => message(T0 + i));
        await h.stores.outbox.enqueue(messages);

        const claims = await Promise.all(
          Array.from({ length: 6 }, (_, i) => h.stores.outbox.claimDue({ now: T0 + 100, limit: 12, owner: `w${i}`, leaseMs: 60_000 })),
        );
        const ids = claims.flat().map((c) => c.id);
        expect(ids).toHaveLength(12);
        expect(new Set(ids).size).toBe(12);
        expect([...ids].sort()).toEqual(messages.map((m) => m.id).sort());
        // Each row's recorded owner is the claimer that returned it.
        for (const [i, claim] of claims.entries()) {
          for (const c of claim) expect((await outboxRow(c.id)).lock_owner).toBe(`w${i}`);
        }
      });

      it("markSent by the lease owner records the delivery and drops the payload; by anyone else it changes nothing", async () => {
        const m = message(T0);
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: T0, limit: 1, owner: "a", leaseMs: 1000 });
        const leased = await outboxRow(m.id);

        await h.stores.outbox.markSent(m.id, "b", T0 + 5);
        expect(await outboxRow(m.id)).toStrictEqual(leased);

        await h.stores.outbox.markSent(m.id, "a", T0 + 5);
        expect(await outboxRow(m.id)).toStrictEqual({
          ...leased,
          status: "sent",
          sent_at: T0 + 5,
          payload: null,
          attempts: 1,
          locked_until: 0,
          lock_owner: null,
        });
        expect(await h.stores.outbox.claimDue({ now: T0 + 10_000_000, limit: 10, owner: "c", leaseMs: 1000 })).toStrictEqual([]);
      });

      it("markSent by an owner whose lease was taken over changes nothing", async () => {
        const m = message(T0);
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: T0, limit: 1, owner: "a", leaseMs: 1000 });
        await h.stores.outbox.claimDue({ now: T0 + 1000, limit: 1, owner: "b", leaseMs: 1000 });
        const takenOver = await outboxRow(m.id);

        await h.stores.outbox.markSent(m.id, "a", T0 + 1001);
        await h.stores.outbox.markFailed(m.id, "a", "late", T0 + 5000);
        expect(await outboxRow(m.id)).toStrictEqual(takenOver);
      });

      it("markFailed with a next attempt time releases the message until then, counting the attempt", async () => {
        const m = message(T0);
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: T0, limit: 1, owner: "a", leaseMs: 60_000 });

        await h.stores.outbox.markFailed(m.id, "a", "421 try again later", T0 + 500);
        const row = await outboxRow(m.id);
        expect(row).toMatchObject({
          status: "pending",
          attempts: 1,
          next_attempt_at: T0 + 500,
          locked_until: 0,
          lock_owner: null,
          last_error: "421 try again later",
          payload: m.payloadSealed,
          sent_at: null,
        });

        expect(await h.stores.outbox.claimDue({ now: T0 + 499, limit: 10, owner: "b", leaseMs: 1000 })).toStrictEqual([]);
        expect(await h.stores.outbox.claimDue({ now: T0 + 500, limit: 10, owner: "b", leaseMs: 1000 })).toStrictEqual([
          { ...m, attempts: 1, queuedAt: m.createdAt },
        ]);
      });

      it("markFailed(null) gives up: status failed, payload cleared, never claimed again", async () => {
        const m = message(T0);
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: T0, limit: 1, owner: "a", leaseMs: 60_000 });

        await h.stores.outbox.markFailed(m.id, "b", "not the owner", null);
        expect((await outboxRow(m.id)).status).toBe("pending");
        expect((await outboxRow(m.id)).payload).toBe(m.payloadSealed);

        await h.stores.outbox.markFailed(m.id, "a", "550 mailbox unavailable", null);
        const row = await outboxRow(m.id);
        expect(row).toMatchObject({
          status: "failed",
          attempts: 1,
          payload: null,
          last_error: "550 mailbox unavailable",
          lock_owner: null,
          locked_until: 0,
          sent_at: null,
        });
        expect(await h.stores.outbox.claimDue({ now: Number.MAX_SAFE_INTEGER - 1e9, limit: 10, owner: "c", leaseMs: 1000 })).toStrictEqual([]);
      });

      it("markFailed keeps at most 500 characters of the error", async () => {
        const m = message(T0);
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: T0, limit: 1, owner: "a", leaseMs: 60_000 });
        await h.stores.outbox.markFailed(m.id, "a", "é".repeat(300) + "x".repeat(400), T0 + 1);
        expect((await outboxRow(m.id)).last_error).toBe("é".repeat(300) + "x".repeat(200));
      });

      /** Queues `m`, leases it and gives it up with `error`, keeping its payload (what the worker does). */
      const failMessage = async (m: OutboxMessage, error = "EENVELOPE 550 RCPT TO", keepPayload = true) => {
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: m.createdAt, limit: 1, owner: "a", leaseMs: 60_000 });
        await h.stores.outbox.markFailed(m.id, "a", error, null, { errorClass: "permanent", at: m.createdAt + 7, keepPayload });
      };

      it("markFailed(null, keepPayload) gives up keeping the sealed payload, the error class and when", async () => {
        const m = message(T0);
        await failMessage(m);
        expect(await outboxRow(m.id)).toMatchObject({
          status: "failed",
          attempts: 1,
          payload: m.payloadSealed,
          last_error: "EENVELOPE 550 RCPT TO",
          last_error_class: "permanent",
          failed_at: T0 + 7,
        });
        expect(await h.stores.outbox.claimDue({ now: T0 + 10_000_000, limit: 10, owner: "c", leaseMs: 1000 })).toStrictEqual([]);
      });

      it("listFailed pages failed messages of a tenant or of all, in (tenant, id) order, without payloads", async () => {
        const a = [message(T0, { tenantId: "outbox-a" }), message(T0 + 1, { tenantId: "outbox-a" }), message(T0 + 2, { tenantId: "outbox-a" })];
        const b = [message(T0 + 3, { tenantId: "outbox-b" })];
        for (const m of [...a, ...b]) await failMessage(m);
        await failMessage(message(T0 + 4, { tenantId: "outbox-b" }), "payload can no longer be opened", false);
        await h.stores.outbox.enqueue([message(T0 + 5, { tenantId: "outbox-a" })]); // pending: never listed

        const all = await h.stores.outbox.listFailed({ limit: 10 });
        expect(all.map((f) => f.tenantId)).toEqual(["outbox-a", "outbox-a", "outbox-a", "outbox-b", "outbox-b"]);
        expect(all.slice(0, 3).map((f) => f.id)).toEqual(a.map((m) => m.id).sort());
        expect(all[0]).toStrictEqual({
          id: all[0]!.id,
          tenantId: "outbox-a",
          kind: "verify_email",
          attempts: 1,
          lastError: "EENVELOPE 550 RCPT TO",
          lastErrorClass: "permanent",
          createdAt: a.find((m) => m.id === all[0]!.id)!.createdAt,
          failedAt: a.find((m) => m.id === all[0]!.id)!.createdAt + 7,
          queuedAt: a.find((m) => m.id === all[0]!.id)!.createdAt,
          requeueable: true,
        });
        expect(all.map((f) => f.requeueable)).toEqual([true, true, true, ...(all[3]!.id === b[0]!.id ? [true, false] : [false, true])]);

        // Pages of two, resuming after the last one seen, across the tenant boundary.
        const first = await h.stores.outbox.listFailed({ limit: 2 });
        const second = await h.stores.outbox.listFailed({ limit: 2, after: { tenantId: first[1]!.tenantId, id: first[1]!.id } });
        const third = await h.stores.outbox.listFailed({ limit: 2, after: { tenantId: second[1]!.tenantId, id: second[1]!.id } });
        expect([...first, ...second, ...third]).toStrictEqual(all);

        expect((await h.stores.outbox.listFailed({ tenantId: "outbox-b", limit: 10 })).map((f) => f.tenantId)).toEqual(["outbox-b", "outbox-b"]);
        expect(await h.stores.outbox.listFailed({ tenantId: "outbox-none", limit: 10 })).toStrictEqual([]);
      });

      it("requeue puts a failed message back, due now, its age restarting; repeatable, confined to the tenant", async () => {
        const m = message(T0, { tenantId: "outbox-a" });
        await failMessage(m);
        expect(await h.stores.outbox.requeue({ id: m.id, tenantId: "outbox-b", now: T0 + 100 })).toStrictEqual({ outcome: "not_found" });
        expect((await outboxRow(m.id)).status).toBe("failed");
        expect(await h.stores.outbox.requeue({ id: m.id, tenantId: "outbox-a", now: T0 + 100 })).toStrictEqual({ outcome: "requeued", tenantId: "outbox-a" });
        expect(await outboxRow(m.id)).toMatchObject({
          status: "pending",
          next_attempt_at: T0 + 100,
          queued_at: T0 + 100,
          failed_at: null,
          attempts: 0,
          payload: m.payloadSealed,
        });
        expect(await h.stores.outbox.requeue({ id: m.id, now: T0 + 200 })).toMatchObject({ outcome: "requeued" }); // again: already pending
        expect((await outboxRow(m.id)).queued_at).toBe(T0 + 100);
        expect(await h.stores.outbox.claimDue({ now: T0 + 100, limit: 10, owner: "b", leaseMs: 1000 })).toStrictEqual([
          { ...m, attempts: 0, queuedAt: T0 + 100 },
        ]);
        expect(await h.stores.outbox.requeue({ id: randomUUID(), now: T0 })).toMatchObject({ outcome: "not_found" });
      });

      it("requeue refuses a message whose payload is gone; requeueAll takes only those with one", async () => {
        const gone = message(T0, { tenantId: "outbox-a" });
        await failMessage(gone, "payload can no longer be opened", false);
        expect(await h.stores.outbox.requeue({ id: gone.id, now: T0 + 1 })).toMatchObject({ outcome: "payload_gone" });
        const a = message(T0 + 1, { tenantId: "outbox-a" });
        const b = message(T0 + 2, { tenantId: "outbox-b" });
        await failMessage(a);
        await failMessage(b);
        expect(await h.stores.outbox.countByStatus()).toStrictEqual({ pending: 0, failed: 3 });
        expect(await h.stores.outbox.requeueAll({ tenantId: "outbox-a", now: T0 + 10 })).toBe(1);
        expect(await h.stores.outbox.countByStatus()).toStrictEqual({ pending: 1, failed: 2 });
        expect(await h.stores.outbox.requeueAll({ now: T0 + 10 })).toBe(1);
        expect(await h.stores.outbox.requeueAll({ now: T0 + 10 })).toBe(0);
        expect(await h.stores.outbox.countByStatus()).toStrictEqual({ pending: 2, failed: 1 });
        expect((await outboxRow(gone.id)).status).toBe("failed");
      });

      it("outbox rows hold numbers as numbers", async () => {
        const m = message(2 ** 41 + 3);
        await h.stores.outbox.enqueue([m]);
        await h.stores.outbox.claimDue({ now: 2 ** 41 + 3, limit: 1, owner: "a", leaseMs: 1000 });
        await h.stores.outbox.markSent(m.id, "a", 2 ** 41 + 4);
        const row = await outboxRow(m.id);
        for (const column of ["attempts", "next_attempt_at", "locked_until", "created_at", "sent_at"]) {
          expect(typeof row[column], column).toBe("number");
        }
        expect(row).toMatchObject({ attempts: 1, next_attempt_at: 2 ** 41 + 3, created_at: 2 ** 41 + 3, sent_at: 2 ** 41 + 4 });
      });
    });
  });
}
