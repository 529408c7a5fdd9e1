// The KeyStore port and the AccountStore's erasure methods (src/domain/ports/)
// on every SQL backend: embedded (main database and keys.sqlite apart), MySQL
// with the key store in the main database through its own pool (the default),
// and MySQL with the key store in a database of its own (KEYSTORE_MYSQL_URL).
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { newEmailAccount } from "../../src/domain/accounts.ts";
import { accountEvent, EventType } from "../../src/domain/events.ts";
import { newId } from "../../src/domain/ids.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { ACCOUNT_TABLES } from "../../src/store/sql/account-tables.ts";
import { moveKeysFromMainDatabase } from "../../src/store/sql/key-store.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const keyring = createKeyring([{ id: "k1", key: randomBytes(32) }], randomBytes(32));

const VARIANTS: Array<{ name: string; backend: "embedded" | "mysql"; separateKeyDatabase: boolean }> = [
  { name: "embedded (keys.sqlite apart)", backend: "embedded", separateKeyDatabase: true },
  ...(BACKENDS.includes("mysql")
    ? [
        { name: "mysql (keys in the main database)", backend: "mysql" as const, separateKeyDatabase: false },
        { name: "mysql (KEYSTORE_MYSQL_URL)", backend: "mysql" as const, separateKeyDatabase: true },
      ]
    : []),
];

describe.each(VARIANTS)("KeyStore and erasure contract: $name", ({ backend, separateKeyDatabase }) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend, { separateKeyDatabase });
  });
  afterAll(async () => {
    await h?.close();
  });

  const key = (accountId = randomUUID()) => ({ accountId, tenantId: "t1", wrappedKey: `k1.${randomBytes(16).toString("base64url")}`, createdAt: T0 });

  /** A full account: its key in the key store, its rows in the main database, a message and a consent. */
  async function person(tenantId: string, role: Role = Role.USER) {
    const rows = newEmailAccount(keyring, {
      tenantId,
      email: `${randomUUID()}@example.test`,
      lookupHash: randomBytes(32).toString("hex"),
      passwordHash: null,
      role,
      state: AccountState.ACTIVE,
      locale: "en",
      verifiedAt: T0,
      at: T0,
    });
    const accountId = rows.account.id;
    // A webhook of the tenant, so the account's event gets a delivery row too.
    if (!(await h.stores.webhooks.list(tenantId)).length) {
      await h.stores.webhooks.create({
        id: newId(T0),
        tenantId,
        url: "https://hooks.example.test/",
        eventTypes: [],
        secretSealed: "sealed",
        createdAt: T0,
        updatedAt: T0,
      });
    }
    await h.stores.accounts.createAccount({
      account: rows.account,
      wrappedKey: rows.wrappedKey,
      identity: rows.identity,
      messages: [{ id: randomUUID(), tenantId, accountId, kind: "verify_email", payloadSealed: "sealed", createdAt: T0 }],
      consents: [{ id: randomUUID(), tenantId, accountId, purpose: "terms", version: "1", granted: true, client: "test", recordedAt: T0 }],
      events: [accountEvent(EventType.ACCOUNT_CREATED, rows.account, T0)],
    });
    // A subscription change made under an idempotency key (a billing webhook's): its key is a row about the account too.
    await h.stores.accounts.updateAccount({ tenantId, accountId, at: T0, onceKey: randomBytes(32).toString("hex"), change: () => ({ plan: "pro" }) });
    await h.stores.events.sequence({ limit: 1000, now: T0, newId: () => newId(T0) });
    // A confirmed second factor and its recovery codes: rows about the account too.
    const factorId = newId(T0);
    await h.stores.secondFactors.putPending({
      id: factorId,
      tenantId,
      accountId,
      kind: 1,
      secretSealed: "sealed",
      createdAt: T0,
      confirmedAt: null,
      lastUsedStep: null,
      lastUsedAt: null,
    });
    await h.stores.secondFactors.confirm({ accountId, factorId, at: T0, step: 1, recoveryCodeHashes: [randomBytes(32).toString("hex")] });
    return { ...rows, accountId };
  }

  /** Rows about the account in every per-account table of the main database. */
  async function rowsAbout(accountId: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const { table, column } of ACCOUNT_TABLES) {
      const row = await h.raw
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as("n"))
        .where(column, "=", accountId)
        .executeTakeFirstOrThrow();
      counts[table] = Number(row.n);
    }
    return counts;
  }

  describe("KeyStore", () => {
    it("put, get, getMany and delete keys by account id", async () => {
      const [a, b] = [key(), key()];
      await h.stores.keys.put(a);
      await h.stores.keys.put(b);
      expect(await h.stores.keys.get(a.accountId)).toBe(a.wrappedKey);
      expect(await h.stores.keys.get(randomUUID())).toBeUndefined();
      expect(await h.stores.keys.getMany([a.accountId, b.accountId, randomUUID()])).toEqual(
        new Map([
          [a.accountId, a.wrappedKey],
          [b.accountId, b.wrappedKey],
        ]),
      );
      expect(await h.stores.keys.getMany([])).toEqual(new Map());
      await expect(h.stores.keys.put({ ...a, wrappedKey: "k1.other" })).rejects.toThrow();
      expect(await h.stores.keys.get(a.accountId)).toBe(a.wrappedKey);
      await h.stores.keys.delete([a.accountId, randomUUID()]);
      expect(await h.stores.keys.get(a.accountId)).toBeUndefined();
      expect(await h.stores.keys.get(b.accountId)).toBe(b.wrappedKey);
    });

    it("list() pages through every key in account id order", async () => {
      const put = Array.from({ length: 7 }, () => key());
      for (const k of put) await h.stores.keys.put(k);
      const seen: string[] = [];
      let after = "";
      for (;;) {
        const page = await h.stores.keys.list({ afterAccountId: after, limit: 3 });
        if (page.length === 0) break;
        seen.push(...page.map((k) => k.accountId));
        after = page[page.length - 1]!.accountId;
      }
      expect(seen).toEqual([...seen].sort());
      expect(seen).toEqual(expect.arrayContaining(put.map((k) => k.accountId)));
      expect(new Set(seen).size).toBe(seen.length);
    });

    it("replace() is a compare-and-set: only over the expected key, never over a deleted one", async () => {
      const k = key();
      await h.stores.keys.put(k);
      expect(await h.stores.keys.replace({ accountId: k.accountId, expected: "k1.stale", wrappedKey: "k2.new" })).toBe(false);
      expect(await h.stores.keys.get(k.accountId)).toBe(k.wrappedKey);
      expect(await h.stores.keys.replace({ accountId: k.accountId, expected: k.wrappedKey, wrappedKey: "k2.new" })).toBe(true);
      expect(await h.stores.keys.get(k.accountId)).toBe("k2.new");
      await h.stores.keys.delete([k.accountId]);
      expect(await h.stores.keys.replace({ accountId: k.accountId, expected: "k2.new", wrappedKey: "k3.newer" })).toBe(false);
      expect(await h.stores.keys.get(k.accountId)).toBeUndefined();
    });

    it("erase() destroys the key and ledgers the account once, however often it runs (also concurrently)", async () => {
      const k = key();
      await h.stores.keys.put(k);
      await Promise.all([1, 2, 3].map((i) => h.stores.keys.erase({ accountId: k.accountId, tenantId: "t1", erasedAt: T0 + i })));
      await h.stores.keys.erase({ accountId: k.accountId, tenantId: "t1", erasedAt: T0 + 10 });
      expect(await h.stores.keys.get(k.accountId)).toBeUndefined();
      const ledger = await h.rawKeys.selectFrom("erasure_ledger").selectAll().where("account_id", "=", k.accountId).execute();
      expect(ledger).toHaveLength(1);
      expect([T0 + 1, T0 + 2, T0 + 3]).toContain(Number(ledger[0]!.erased_at));
    });

    it("listErased() pages through the ledger in account id order", async () => {
      const ids: string[] = Array.from({ length: 5 }, () => randomUUID());
      for (const id of ids) await h.stores.keys.erase({ accountId: id, tenantId: "t2", erasedAt: T0 });
      const seen: string[] = [];
      let after = "";
      for (;;) {
        const page = await h.stores.keys.listErased({ afterAccountId: after, limit: 2 });
        if (page.length === 0) break;
        seen.push(...page.map((r) => r.accountId));
        after = page[page.length - 1]!.accountId;
      }
      expect(seen).toEqual([...seen].sort());
      expect(seen).toEqual(expect.arrayContaining(ids));
      const mine = (await h.stores.keys.listErased({ afterAccountId: "", limit: 10_000 })).filter((r) => ids.includes(r.accountId));
      expect(mine.every((r) => r.tenantId === "t2" && r.erasedAt === T0)).toBe(true);
    });

    it("keeps the keys apart: the main database holds none when the key store is its own database", async () => {
      const p = await person(`t-${randomUUID().slice(0, 8)}`);
      const inMain = await h.raw.selectFrom("account_keys").selectAll().where("account_id", "=", p.accountId).execute();
      expect(inMain).toHaveLength(separateKeyDatabase ? 0 : 1);
      expect(await h.rawKeys.selectFrom("account_keys").select("wrapped_key").where("account_id", "=", p.accountId).executeTakeFirst()).toEqual({
        wrapped_key: p.wrappedKey,
      });
    });
  });

  describe("AccountStore without a key", () => {
    it("an account whose key is gone is not found, by id, by identity or in a listing", async () => {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      const p = await person(tenantId);
      expect((await h.stores.accounts.getAccount(tenantId, p.accountId))?.wrappedKey).toBe(p.wrappedKey);
      await h.stores.keys.delete([p.accountId]);
      expect(await h.stores.accounts.getAccount(tenantId, p.accountId)).toBeUndefined();
      expect(await h.stores.accounts.findByIdentity(tenantId, p.identity.kind, p.identity.lookupHash)).toBeUndefined();
      expect(await h.stores.accounts.listAccounts({ tenantId, limit: 10 })).toEqual([]);
    });

    it("createAccount writes the key first and removes it when the account cannot be created", async () => {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      const p = await person(tenantId);
      const twin = newEmailAccount(keyring, {
        tenantId,
        email: "twin@example.test",
        lookupHash: p.identity.lookupHash,
        passwordHash: null,
        role: Role.USER,
        state: AccountState.ACTIVE,
        locale: "en",
        verifiedAt: T0,
        at: T0,
      });
      await expect(
        h.stores.accounts.createAccount({ account: twin.account, wrappedKey: twin.wrappedKey, identity: twin.identity, messages: [] }),
      ).rejects.toThrow("identity already exists");
      expect(await h.stores.keys.get(twin.account.id)).toBeUndefined();
    });
  });

  describe("eraseAccount", () => {
    it("destroys the key, ledgers the account and deletes its rows in every per-account table, and nobody else's", async () => {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      const [p, bystander] = [await person(tenantId), await person(tenantId)];
      const before = await rowsAbout(p.accountId);
      expect(Object.entries(before).filter(([table, n]) => n === 0 && (separateKeyDatabase || table !== "account_keys"))).toEqual(
        separateKeyDatabase ? [["account_keys", 0]] : [],
      );
      const erased = await h.stores.accounts.eraseAccount({ tenantId, accountId: p.accountId, at: T0 + 5 });
      expect(erased?.id).toBe(p.accountId);
      expect(Object.values(await rowsAbout(p.accountId)).every((n) => n === 0)).toBe(true);
      expect(await h.stores.keys.get(p.accountId)).toBeUndefined();
      expect((await h.stores.keys.listErased({ afterAccountId: "", limit: 100_000 })).find((r) => r.accountId === p.accountId)).toEqual({
        accountId: p.accountId,
        tenantId,
        erasedAt: T0 + 5,
      });
      // The bystander keeps everything.
      expect(await h.stores.keys.get(bystander.accountId)).toBe(bystander.wrappedKey);
      expect((await rowsAbout(bystander.accountId)).accounts).toBe(1);
      expect((await rowsAbout(bystander.accountId)).consents).toBe(1);
      // Again: nothing there any more.
      expect(await h.stores.accounts.eraseAccount({ tenantId, accountId: p.accountId, at: T0 + 6 })).toBeUndefined();
    });

    it("erases nothing for another tenant's account, or when check refuses", async () => {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      const p = await person(tenantId, Role.SUPER_ADMIN);
      expect(await h.stores.accounts.eraseAccount({ tenantId: "elsewhere", accountId: p.accountId, at: T0 })).toBeUndefined();
      const refusal = new Error("refused");
      let seen: unknown;
      await expect(
        h.stores.accounts.eraseAccount({
          tenantId,
          accountId: p.accountId,
          at: T0,
          check: (current, others) => {
            seen = { role: current.role, others };
            throw refusal;
          },
        }),
      ).rejects.toBe(refusal);
      expect(seen).toEqual({ role: Role.SUPER_ADMIN, others: 0 });
      expect(await h.stores.keys.get(p.accountId)).toBe(p.wrappedKey);
      expect((await rowsAbout(p.accountId)).accounts).toBe(1);
      expect((await h.stores.keys.listErased({ afterAccountId: "", limit: 100_000 })).some((r) => r.accountId === p.accountId)).toBe(false);
    });

    it("deleteAccountRows deletes the rows of accounts that came back and reports which had rows", async () => {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      const [p, q] = [await person(tenantId), await person(tenantId)];
      const absent = randomUUID();
      expect((await h.stores.accounts.deleteAccountRows([p.accountId, absent])).sort()).toEqual([p.accountId]);
      expect(Object.values(await rowsAbout(p.accountId)).every((n) => n === 0)).toBe(true);
      expect((await rowsAbout(q.accountId)).accounts).toBe(1);
      expect(await h.stores.accounts.deleteAccountRows([p.accountId])).toEqual([]);
      expect(await h.stores.accounts.deleteAccountRows([])).toEqual([]);
    });
  });
});

describe("moving keys out of the main database", () => {
  it("copies every key the main database holds into the key store, never an erased one, and empties the main table", async () => {
    const h = await openDurable("embedded");
    try {
      const rows = Array.from({ length: 1203 }, () => ({ account_id: randomUUID(), tenant_id: "t", wrapped_key: `k1.${randomUUID()}`, created_at: T0 }));
      for (let i = 0; i < rows.length; i += 400)
        await h.raw
          .insertInto("account_keys")
          .values(rows.slice(i, i + 400))
          .execute();
      const erased = rows[7]!;
      await h.stores.keys.erase({ accountId: erased.account_id, tenantId: "t", erasedAt: T0 });
      // Already copied by an earlier, interrupted run: kept as is.
      await h.stores.keys.put({ accountId: rows[8]!.account_id, tenantId: "t", wrappedKey: rows[8]!.wrapped_key, createdAt: T0 });

      expect(await moveKeysFromMainDatabase(h.database, h.keyDatabase)).toBe(rows.length - 2);
      expect(await h.raw.selectFrom("account_keys").selectAll().execute()).toEqual([]);
      const moved = await h.stores.keys.getMany(rows.map((r) => r.account_id));
      expect(moved.size).toBe(rows.length - 1);
      expect(moved.has(erased.account_id)).toBe(false);
      expect(moved.get(rows[0]!.account_id)).toBe(rows[0]!.wrapped_key);
      expect(await moveKeysFromMainDatabase(h.database, h.keyDatabase)).toBe(0);
    } finally {
      await h.close();
    }
  });

  it("does nothing to an empty main table", async () => {
    const h = await openDurable("embedded");
    try {
      expect(await moveKeysFromMainDatabase(h.database, h.keyDatabase)).toBe(0);
    } finally {
      await h.close();
    }
  });
});
