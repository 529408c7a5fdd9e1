// Concurrent changes to accounts must not fail because the database picked one
// of them as a deadlock's victim (issue 9: concurrent role changes surfaced as
// Internal): the store runs such a transaction again. Over MariaDB, real
// concurrent role changes in the default tenant (which lock its super admins
// first); and the retry itself, with a scripted driver error.
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { newEmailAccount } from "../../src/domain/accounts.ts";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { DEADLOCK_ATTEMPTS, isDeadlock, translateSqlError, withDeadlockRetry } from "../../src/store/sql/errors.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const keyring = createKeyring([{ id: "k1", key: randomBytes(32) }], randomBytes(32));
const deadlock = () =>
  Object.assign(new Error("Deadlock found when trying to get lock; try restarting transaction"), { errno: 1213, code: "ER_LOCK_DEADLOCK" });

describe("withDeadlockRetry", () => {
  it("runs a transaction a deadlock rolled back again, and gives up as unavailable after a few attempts", async () => {
    let calls = 0;
    expect(await withDeadlockRetry(async () => (++calls < 3 ? Promise.reject(deadlock()) : "done"))).toBe("done");
    expect(calls).toBe(3);
    calls = 0;
    const error = await withDeadlockRetry(async () => {
      calls++;
      throw deadlock();
    }).catch((e: unknown) => e);
    expect(calls).toBe(DEADLOCK_ATTEMPTS);
    expect(isDeadlock(error)).toBe(true);
    expect((translateSqlError(error) as { kind?: string }).kind).toBe("unavailable");
  });

  it("never runs again what failed otherwise", async () => {
    let calls = 0;
    await expect(withDeadlockRetry(async () => (calls++, Promise.reject(Object.assign(new Error("dup"), { errno: 1062 }))))).rejects.toThrow("dup");
    expect(calls).toBe(1);
  });
});

describe.each(BACKENDS)("concurrent role changes on the %s backend", (backend) => {
  let durable: DurableHarness;
  const ids: string[] = [];

  beforeAll(async () => {
    durable = await openDurable(backend);
    const at = Date.now();
    for (let i = 0; i < 12; i++) {
      const rows = newEmailAccount(keyring, {
        tenantId: DEFAULT_TENANT_ID,
        email: `${randomUUID()}@example.test`,
        lookupHash: randomBytes(32).toString("hex"),
        passwordHash: null,
        role: i % 2 ? Role.SUPER_ADMIN : Role.ADMIN,
        state: AccountState.ACTIVE,
        locale: "en",
        verifiedAt: at,
        at,
      });
      await durable.stores.accounts.createAccount({ account: rows.account, wrappedKey: rows.wrappedKey, identity: rows.identity, messages: [] });
      ids.push(rows.account.id);
    }
  });
  afterAll(async () => {
    await durable?.close();
  });

  it("all succeed: none is lost to a deadlock", async () => {
    const roles = [Role.USER, Role.ADMIN, Role.SUPER_ADMIN];
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled(
        ids.flatMap((accountId, i) =>
          [0, 1].map((j) =>
            durable.stores.accounts.updateAccount({
              tenantId: DEFAULT_TENANT_ID,
              accountId,
              at: Date.now(),
              change: () => ({ role: roles[(i + j + round) % 3]!, endSessions: "role_changed" }),
            }),
          ),
        ),
      );
      expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    }
  });
});
