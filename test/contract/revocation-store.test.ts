// The RevocationStore (src/domain/ports/revocations.ts) and the account changes
// that queue into it, on every SQL backend: a revocation commits with the change
// that owes it, or not at all, and outlives the erasure that queued it.
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { newEmailAccount } from "../../src/domain/accounts.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const keyring = createKeyring([{ id: "k1", key: randomBytes(32) }], randomBytes(32));

describe.each(BACKENDS)("RevocationStore contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const tenant = () => `t-${randomUUID().slice(0, 8)}`;

  async function account(tenantId: string, role: Role = Role.USER) {
    const rows = newEmailAccount(keyring, {
      tenantId,
      email: `${randomUUID()}@example.test`,
      lookupHash: randomBytes(32).toString("hex"),
      passwordHash: "$argon2id$old",
      role,
      state: AccountState.ACTIVE,
      locale: "en",
      verifiedAt: T0,
      at: T0,
    });
    await h.stores.accounts.createAccount({ account: rows.account, wrappedKey: rows.wrappedKey, identity: rows.identity, messages: [] });
    return rows.account.id;
  }

  it("updateAccount with endSessions queues one revocation at the change's time, with or without another change", async () => {
    const tenantId = tenant();
    const id = await account(tenantId);
    await h.stores.accounts.updateAccount({ tenantId, accountId: id, at: T0 + 10, change: () => ({ role: Role.ADMIN, endSessions: "role_changed" }) });
    await h.stores.accounts.updateAccount({ tenantId, accountId: id, at: T0 + 20, change: () => ({ endSessions: "deactivated" }) });
    await h.stores.accounts.updateAccount({ tenantId, accountId: id, at: T0 + 30, change: () => ({ plan: "pro" }) });
    const pending = await h.stores.revocations.forAccount(tenantId, id);
    expect(pending.map(({ reason, createdAt, keepTokenHash, tenantId: t, accountId }) => ({ reason, createdAt, keepTokenHash, t, accountId }))).toEqual([
      { reason: "role_changed", createdAt: T0 + 10, keepTokenHash: null, t: tenantId, accountId: id },
      { reason: "deactivated", createdAt: T0 + 20, keepTokenHash: null, t: tenantId, accountId: id },
    ]);
    expect((await h.stores.accounts.getAccount(tenantId, id))?.account.role).toBe(Role.ADMIN);
  });

  it("a change that throws queues nothing, and an unknown account queues nothing", async () => {
    const tenantId = tenant();
    const id = await account(tenantId);
    await expect(
      h.stores.accounts.updateAccount({
        tenantId,
        accountId: id,
        at: T0,
        change: () => {
          throw new Error("refused");
        },
      }),
    ).rejects.toThrow("refused");
    expect(
      await h.stores.accounts.updateAccount({ tenantId: "elsewhere", accountId: id, at: T0, change: () => ({ endSessions: "deactivated" }) }),
    ).toBeUndefined();
    expect(await h.stores.revocations.forAccount(tenantId, id)).toEqual([]);
    expect(await h.stores.revocations.forAccount("elsewhere", id)).toEqual([]);
  });

  it("setPasswordHash queues a revocation with the session to keep only when asked, with the new hash, atomically", async () => {
    const tenantId = tenant();
    const id = await account(tenantId);
    await h.stores.accounts.setPasswordHash(id, "$argon2id$rehash", T0 + 1);
    expect(await h.stores.revocations.forAccount(tenantId, id)).toEqual([]);
    const keep = randomBytes(32).toString("hex");
    await h.stores.accounts.setPasswordHash(id, "$argon2id$new", T0 + 2, { reason: "password_changed", keepTokenHash: keep });
    expect((await h.stores.accounts.getAccount(tenantId, id))?.account.passwordHash).toBe("$argon2id$new");
    expect(await h.stores.revocations.forAccount(tenantId, id)).toMatchObject([{ reason: "password_changed", createdAt: T0 + 2, keepTokenHash: keep }]);
    // An account that does not exist: nothing to change, nothing owed.
    const ghost = randomUUID();
    await h.stores.accounts.setPasswordHash(ghost, "$argon2id$x", T0, { reason: "password_reset" });
    expect(await h.stores.revocations.listPending(10_000)).not.toContainEqual(expect.objectContaining({ accountId: ghost }));
  });

  it("eraseAccount queues an 'erased' revocation that outlives the account's rows and the ledger replay; a refused erasure queues nothing", async () => {
    const tenantId = tenant();
    const kept = await account(tenantId);
    await expect(
      h.stores.accounts.eraseAccount({
        tenantId,
        accountId: kept,
        at: T0,
        check: () => {
          throw new Error("last super admin");
        },
      }),
    ).rejects.toThrow("last super admin");
    expect(await h.stores.revocations.forAccount(tenantId, kept)).toEqual([]);

    const id = await account(tenantId);
    expect(await h.stores.accounts.eraseAccount({ tenantId, accountId: id, at: T0 + 5 })).toBeDefined();
    expect(await h.stores.accounts.getAccount(tenantId, id)).toBeUndefined();
    await h.stores.accounts.deleteAccountRows([id]);
    expect(await h.stores.revocations.forAccount(tenantId, id)).toMatchObject([{ reason: "erased", createdAt: T0 + 5, accountId: id, tenantId }]);
  });

  it("eraseAccount finishes an erasure interrupted after its key was destroyed: rows deleted, revocation queued, answered undefined", async () => {
    const tenantId = tenant();
    const id = await account(tenantId);
    await h.stores.keys.delete([id]); // as KeyStore.erase left it, the main transaction having failed
    expect(await h.raw.selectFrom("accounts").select("id").where("id", "=", id).execute()).toHaveLength(1);
    let checked = false;
    expect(
      await h.stores.accounts.eraseAccount({
        tenantId,
        accountId: id,
        at: T0 + 7,
        check: () => {
          checked = true;
        },
      }),
    ).toBeUndefined();
    expect(checked).toBe(false);
    expect(await h.raw.selectFrom("accounts").select("id").where("id", "=", id).execute()).toHaveLength(0);
    expect(await h.raw.selectFrom("identities").select("id").where("account_id", "=", id).execute()).toHaveLength(0);
    expect(await h.stores.revocations.forAccount(tenantId, id)).toMatchObject([{ reason: "erased", createdAt: T0 + 7 }]);
    // Not from another tenant, and an updateAccount finds nothing to change.
    const other = await account(tenantId);
    await h.stores.keys.delete([other]);
    expect(await h.stores.accounts.eraseAccount({ tenantId: "elsewhere", accountId: other, at: T0 })).toBeUndefined();
    expect(await h.stores.accounts.updateAccount({ tenantId, accountId: other, at: T0, change: () => ({ endSessions: "deactivated" }) })).toBeUndefined();
    expect(await h.stores.revocations.forAccount(tenantId, other)).toEqual([]);
    expect(await h.raw.selectFrom("accounts").select("id").where("id", "=", other).execute()).toHaveLength(1);
  });

  it("queue records a revocation no other change carries", async () => {
    const tenantId = tenant();
    const id = await account(tenantId);
    await h.stores.revocations.queue({ tenantId, accountId: id, at: T0 + 3, request: { reason: "sessions_revoked" } });
    expect(await h.stores.revocations.forAccount(tenantId, id)).toMatchObject([
      { reason: "sessions_revoked", createdAt: T0 + 3, keepTokenHash: null, accountId: id, tenantId },
    ]);
  });

  it("listPending reads oldest first up to the limit; complete forgets one, twice without error", async () => {
    const tenantId = tenant();
    const ids = [await account(tenantId), await account(tenantId), await account(tenantId)];
    for (const [i, id] of ids.entries())
      await h.stores.accounts.updateAccount({ tenantId, accountId: id, at: T0 + 100 + i, change: () => ({ endSessions: "deactivated" }) });
    const all = (await h.stores.revocations.listPending(10_000)).filter((r) => r.tenantId === tenantId);
    expect(all.map((r) => r.accountId)).toEqual(ids);
    const first = await h.stores.revocations.listPending(1);
    expect(first).toHaveLength(1);
    const target = all[1]!;
    await h.stores.revocations.complete(target.id);
    await h.stores.revocations.complete(target.id);
    expect((await h.stores.revocations.listPending(10_000)).filter((r) => r.tenantId === tenantId).map((r) => r.accountId)).toEqual([ids[0], ids[2]]);
    expect(await h.stores.revocations.forAccount(tenantId, ids[1]!)).toEqual([]);
  });

  it("the migration is idempotent: running every migration again keeps the queue", async () => {
    const tenantId = tenant();
    const id = await account(tenantId);
    await h.stores.accounts.updateAccount({ tenantId, accountId: id, at: T0, change: () => ({ endSessions: "deactivated" }) });
    await h.raw.deleteFrom("kysely_migration").where("name", "=", "0008_pending_revocations").execute();
    expect(await migrateToLatest(h.raw)).toEqual(["0008_pending_revocations"]);
    expect(await h.stores.revocations.forAccount(tenantId, id)).toHaveLength(1);
  });
});
