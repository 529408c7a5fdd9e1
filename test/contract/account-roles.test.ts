// The AccountStore role methods (src/domain/ports/) on every SQL backend:
// setRole, and countAccounts (what the last-super-admin rule counts).
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { newEmailAccount } from "../../src/domain/accounts.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const keyring = createKeyring([{ id: "k1", key: randomBytes(32) }], randomBytes(32));

describe.each(BACKENDS)("AccountStore roles contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  async function account(tenantId: string, role: Role, state: AccountState = AccountState.ACTIVE) {
    const rows = newEmailAccount(keyring, {
      tenantId,
      email: `${randomUUID()}@example.test`,
      lookupHash: randomBytes(32).toString("hex"),
      passwordHash: null,
      role,
      state,
      locale: "en",
      verifiedAt: T0,
      at: T0,
    });
    await h.stores.accounts.createAccount({ account: rows.account, wrappedKey: rows.wrappedKey, identity: rows.identity, messages: [] });
    return rows.account.id;
  }

  it("countAccounts counts one tenant's accounts with a role, and a state when given", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    await account(tenantId, Role.SUPER_ADMIN);
    await account(tenantId, Role.SUPER_ADMIN);
    await account(tenantId, Role.SUPER_ADMIN, AccountState.DEACTIVATED);
    await account(tenantId, Role.ADMIN);
    await account(`${tenantId}-other`, Role.SUPER_ADMIN);
    expect(await h.stores.accounts.countAccounts({ tenantId, role: Role.SUPER_ADMIN })).toBe(3);
    expect(await h.stores.accounts.countAccounts({ tenantId, role: Role.SUPER_ADMIN, state: AccountState.ACTIVE })).toBe(2);
    expect(await h.stores.accounts.countAccounts({ tenantId, role: Role.USER })).toBe(0);
  });

  it("setRole changes the role and update time within the tenant only", async () => {
    const tenantId = `t-${randomUUID().slice(0, 8)}`;
    const id = await account(tenantId, Role.USER);
    expect(await h.stores.accounts.setRole({ tenantId: "elsewhere", accountId: id, role: Role.ADMIN, at: T0 + 1 })).toBe(false);
    expect(await h.stores.accounts.setRole({ tenantId, accountId: id, role: Role.ADMIN, at: T0 + 5 })).toBe(true);
    const stored = await h.stores.accounts.getAccount(tenantId, id);
    expect(stored?.account.role).toBe(Role.ADMIN);
    expect(stored?.account.updatedAt).toBe(T0 + 5);
    expect(await h.stores.accounts.setRole({ tenantId, accountId: randomUUID(), role: Role.ADMIN, at: T0 })).toBe(false);
  });
});
