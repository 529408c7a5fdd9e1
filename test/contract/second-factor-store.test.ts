// The SecondFactorStore contract (src/domain/ports/second-factors.ts) on every
// SQL backend: one pending factor per account, confirmation replaces the
// recovery codes in the same transaction, a TOTP step and a recovery code are
// each accepted once (compare-and-set, also under concurrency), removing the
// last factor removes the codes, and nothing of another account ever shows.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredSecondFactor } from "../../src/domain/ports/second-factors.ts";
import { SecondFactorKind } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

/** Past 2^32 steps' milliseconds: BIGINT columns really exercised. */
const T0 = Date.UTC(2030, 0, 1);
const STEP = Math.floor(T0 / 30_000);

function pending(accountId: string, overrides: Partial<StoredSecondFactor> = {}): StoredSecondFactor {
  return {
    id: randomUUID(),
    tenantId: "t-factors",
    accountId,
    kind: SecondFactorKind.TOTP,
    secretSealed: `sealed-${randomUUID()}`,
    createdAt: T0,
    confirmedAt: null,
    lastUsedStep: null,
    lastUsedAt: null,
    ...overrides,
  };
}

const hashes = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-${i}`.padEnd(64, "0"));

describe.each(BACKENDS)("SecondFactorStore contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });
  const store = () => h.stores.secondFactors;

  it("keeps one pending factor per account, confirms it once with its codes, and lists nothing of others", async () => {
    const [accountId, other] = [randomUUID(), randomUUID()];
    const first = pending(accountId);
    const second = pending(accountId, { createdAt: T0 + 1 });
    await store().putPending(first);
    await store().putPending(second);
    await store().putPending(pending(other));
    expect((await store().list(accountId)).map((f) => f.id)).toEqual([second.id]);
    expect(await store().hasConfirmed(accountId)).toBe(false);
    expect(await store().confirm({ accountId, factorId: first.id, at: T0 + 2, step: STEP, recoveryCodeHashes: hashes(10, "a") })).toBe(false);
    expect(await store().confirm({ accountId: other, factorId: second.id, at: T0 + 2, step: STEP, recoveryCodeHashes: hashes(10, "a") })).toBe(false);
    expect(await store().confirm({ accountId, factorId: second.id, at: T0 + 2, step: STEP, recoveryCodeHashes: hashes(10, "a") })).toBe(true);
    expect(await store().confirm({ accountId, factorId: second.id, at: T0 + 3, step: STEP, recoveryCodeHashes: hashes(10, "b") })).toBe(false);
    expect(await store().hasConfirmed(accountId)).toBe(true);
    expect(await store().hasConfirmed(other)).toBe(false);
    expect(await store().list(accountId)).toEqual([{ ...second, confirmedAt: T0 + 2, lastUsedStep: STEP, lastUsedAt: T0 + 2 }]);
    expect(await store().countRecoveryCodes(accountId)).toBe(10);
    expect(await store().countRecoveryCodes(other)).toBe(0);
    // A new pending one leaves the confirmed one alone.
    await store().putPending(pending(accountId, { createdAt: T0 + 5 }));
    expect((await store().list(accountId)).filter((f) => f.confirmedAt !== null).map((f) => f.id)).toEqual([second.id]);
  });

  it("accepts each TOTP step once and only moving forward, even when two uses race", async () => {
    const accountId = randomUUID();
    const factor = pending(accountId);
    await store().putPending(factor);
    expect(await store().useStep(accountId, factor.id, STEP, T0)).toBe(false); // pending: not usable
    await store().confirm({ accountId, factorId: factor.id, at: T0, step: STEP, recoveryCodeHashes: [] });
    expect(await store().useStep(accountId, factor.id, STEP, T0)).toBe(false);
    expect(await store().useStep(accountId, factor.id, STEP - 1, T0)).toBe(false);
    expect(await store().useStep(randomUUID(), factor.id, STEP + 1, T0)).toBe(false);
    const raced = await Promise.all(Array.from({ length: 5 }, () => store().useStep(accountId, factor.id, STEP + 1, T0 + 30_000)));
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect((await store().list(accountId))[0]).toMatchObject({ lastUsedStep: STEP + 1, lastUsedAt: T0 + 30_000 });
  });

  it("uses a recovery code once, replaces them all, and removes them with the last factor", async () => {
    const accountId = randomUUID();
    const factor = pending(accountId);
    await store().putPending(factor);
    await store().confirm({ accountId, factorId: factor.id, at: T0, step: STEP, recoveryCodeHashes: hashes(10, "c") });
    const code = hashes(10, "c")[4]!;
    expect(await store().useRecoveryCode(randomUUID(), code, T0)).toBe(false);
    const raced = await Promise.all(Array.from({ length: 4 }, () => store().useRecoveryCode(accountId, code, T0 + 1)));
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect(await store().countRecoveryCodes(accountId)).toBe(9);
    await store().replaceRecoveryCodes(accountId, hashes(10, "d"), T0 + 2);
    expect(await store().countRecoveryCodes(accountId)).toBe(10);
    expect(await store().useRecoveryCode(accountId, hashes(10, "c")[0]!, T0 + 3)).toBe(false);
    expect(await store().remove(randomUUID(), factor.id)).toBe(false);
    expect(await store().remove(accountId, factor.id)).toBe(true);
    expect(await store().remove(accountId, factor.id)).toBe(false);
    expect(await store().countRecoveryCodes(accountId)).toBe(0);
    expect(await store().list(accountId)).toEqual([]);
  });
});
