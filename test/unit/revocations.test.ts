// The revocation queue's runner (src/domain/revocations.ts) over the embedded
// SQL store and the in-process session store behind a fault switch: settle
// never throws for a failing session store, refuses what it could not carry
// out, reports it once, and drain finishes the job once the store answers.
import { randomBytes, randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { newEmailAccount, openAccount } from "../../src/domain/accounts.ts";
import { createRevocations, startRevocationLoop, type Revocations } from "../../src/domain/revocations.ts";
import { createSessions, type Sessions } from "../../src/domain/sessions.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { AccountState, AssuranceLevel, Role } from "../../src/domain/types.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";
import { createMemoryStores } from "../../src/store/memory/stores.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";
import { sessionStoreFaults, type SessionStoreFaults } from "../support/faults.ts";

const keyring = createKeyring([{ id: "k1", key: randomBytes(32) }], randomBytes(32));
const META = { ip: "203.0.113.7", userAgent: "vitest/4" };

/** The account data key sessions seal their client under, in these tests. */
const TEST_DATA_KEY = Buffer.alloc(32, 7);
describe("revocations", () => {
  let durable: DurableHarness;
  let ephemeral: EphemeralStores;
  let faults: SessionStoreFaults;
  let sessions: Sessions;
  let revocations: Revocations;
  let deferred: string[];
  let clock: number;

  beforeEach(async () => {
    clock = Date.UTC(2030, 0, 1);
    durable = await openDurable("embedded");
    faults = sessionStoreFaults();
    ephemeral = faults.wrap(createMemoryStores({ now: () => clock }));
    sessions = createSessions({ dataKey: async () => TEST_DATA_KEY, store: ephemeral.sessions, invalidation: ephemeral.invalidation, now: () => clock });
    await sessions.listen();
    deferred = [];
    revocations = createRevocations({ store: durable.stores.revocations, sessions, now: () => clock, onDeferred: (_, accountId) => deferred.push(accountId) });
  });
  afterEach(async () => {
    await ephemeral.close();
    await durable.close();
  });

  /** An account with one session, then a change at `clock + 1` that queues the revocation of its sessions. */
  async function revokedAccount() {
    const rows = newEmailAccount(keyring, {
      tenantId: "shop",
      email: `${randomUUID()}@example.test`,
      lookupHash: randomBytes(32).toString("hex"),
      passwordHash: null,
      role: Role.ADMIN,
      state: AccountState.ACTIVE,
      locale: "en",
      verifiedAt: clock,
      at: clock,
    });
    await durable.stores.accounts.createAccount({ account: rows.account, wrappedKey: rows.wrappedKey, identity: rows.identity, messages: [] });
    const found = (await durable.stores.accounts.getAccount("shop", rows.account.id))!;
    const { account } = openAccount(keyring, found.account, found.wrappedKey);
    const issued = await sessions.issue(account, DEFAULT_TENANT_SETTINGS, META, AssuranceLevel.AAL1, TEST_DATA_KEY, []);
    clock += 1;
    await durable.stores.accounts.updateAccount({
      tenantId: "shop",
      accountId: account.id,
      at: clock,
      change: () => ({ role: Role.USER, endSessions: "role_changed" }),
    });
    clock += 1;
    return { accountId: account.id, token: issued.token };
  }

  const refused = (token: string) =>
    Promise.resolve(sessions.validate(token)).then(
      () => false,
      () => true,
    );

  it("settle carries the account's revocation out and forgets it", async () => {
    const { accountId, token } = await revokedAccount();
    expect(await revocations.settle("shop", accountId)).toBe(1);
    expect(await refused(token)).toBe(true);
    expect(await ephemeral.sessions.listForAccount(accountId)).toEqual([]);
    expect(await durable.stores.revocations.forAccount("shop", accountId)).toEqual([]);
  });

  it("settle with the session store failing does not throw, refuses at once, reports once; drain finishes once the store answers", async () => {
    const { accountId, token } = await revokedAccount();
    faults.failing = true;
    expect(await revocations.settle("shop", accountId)).toBe(0);
    expect(await refused(token)).toBe(true);
    expect(await revocations.drain()).toEqual({ pending: 1, completed: 0 });
    expect(await revocations.drain()).toEqual({ pending: 1, completed: 0 });
    expect(deferred).toEqual([accountId]); // once, not on every retry
    expect(await refused(token)).toBe(true);

    faults.failing = false;
    expect(await revocations.drain()).toEqual({ pending: 1, completed: 1 });
    expect(await ephemeral.sessions.listForAccount(accountId)).toEqual([]);
    expect(await revocations.drain()).toEqual({ pending: 0, completed: 0 });
  });

  it("a pass with the session store timing out costs one timeout, not one per pending revocation", async () => {
    for (let i = 0; i < 5; i++) await revokedAccount();
    const slow = createSessions({
      dataKey: async () => TEST_DATA_KEY,
      store: {
        ...ephemeral.sessions,
        listForAccount: () => new Promise((_, reject) => setTimeout(() => reject(new Error("Command timed out")), 200)),
      },
      invalidation: ephemeral.invalidation,
      now: () => clock,
    });
    const started = Date.now();
    expect(await createRevocations({ store: durable.stores.revocations, sessions: slow, now: () => clock }).drain()).toEqual({ pending: 5, completed: 0 });
    expect(Date.now() - started).toBeLessThan(800);
  });

  it("a failure here stays refused through a queue read that started before it was committed", async () => {
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const store = durable.stores.revocations;
    const racing = createRevocations({
      store: {
        ...store,
        listPending: async (limit) => {
          const rows = await store.listPending(limit);
          await gate;
          return rows;
        },
      },
      sessions,
      now: () => clock,
    });
    const draining = racing.drain(); // reads the queue before the change below commits
    await new Promise((r) => setTimeout(r, 50));
    const { accountId, token } = await revokedAccount();
    faults.failing = true;
    await racing.settle("shop", accountId);
    expect(await refused(token)).toBe(true);
    release();
    await draining;
    expect(await refused(token)).toBe(true); // the stale read did not lift the refusal
    expect(await racing.drain()).toEqual({ pending: 1, completed: 0 });
    faults.failing = false;
    expect(await racing.drain()).toEqual({ pending: 1, completed: 1 });
    expect(await refused(token)).toBe(true);
  });

  it("settle only touches the tenant's own account", async () => {
    const { accountId, token } = await revokedAccount();
    expect(await revocations.settle("another-tenant", accountId)).toBe(0);
    expect(await refused(token)).toBe(false);
    expect(await durable.stores.revocations.forAccount("shop", accountId)).toHaveLength(1);
  });

  it("the loop drains on its own and stops cleanly", async () => {
    const { accountId, token } = await revokedAccount();
    const loop = startRevocationLoop(revocations, { intervalMs: 10, onError: () => {} });
    const deadline = Date.now() + 2000;
    while ((await durable.stores.revocations.forAccount("shop", accountId)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await loop.stop();
    expect(await durable.stores.revocations.forAccount("shop", accountId)).toEqual([]);
    expect(await refused(token)).toBe(true);
  });
});
