// rotateDataKeys (src/domain/key-rotation.ts) over a real key store: every key
// ends under the active KEK with its data key unchanged; an erasure during the
// rotation is never undone; two rotations at once rewrap each key once; a key
// under a KEK missing from the configuration is reported and left alone.
import { randomBytes, randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { countStaleKeys, rotateDataKeys } from "../../src/domain/key-rotation.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const blind = randomBytes(32);
const oldKek = { id: "old", key: randomBytes(32) };
const newKek = { id: "new", key: randomBytes(32) };
const before = createKeyring([oldKek], blind);
const during = createKeyring([newKek, oldKek], blind);
const after = createKeyring([newKek], blind);

describe("rotateDataKeys", () => {
  let h: DurableHarness;
  let dataKeys: Map<string, Buffer>;

  beforeEach(async () => {
    h = await openDurable("embedded");
    dataKeys = new Map();
    for (let i = 0; i < 23; i++) {
      const accountId = randomUUID();
      const { key, wrapped } = before.newDataKey(accountId);
      dataKeys.set(accountId, key);
      await h.stores.keys.put({ accountId, tenantId: "t", wrappedKey: wrapped, createdAt: 0 });
    }
  });
  afterEach(async () => {
    await h.close();
  });

  async function expectAllUnderNewKek(except: string[] = []) {
    for (const k of await h.stores.keys.list({ afterAccountId: "", limit: 1000 })) {
      expect(k.wrappedKey.startsWith("new.")).toBe(true);
      expect(after.unwrapDataKey(k.accountId, k.wrappedKey).equals(dataKeys.get(k.accountId)!)).toBe(true);
    }
    for (const id of except) expect(await h.stores.keys.get(id)).toBeUndefined();
  }

  it("rewraps every key in batches, the data keys unchanged; a second run has nothing to do", async () => {
    const batches: number[] = [];
    const result = await rotateDataKeys({ keys: h.stores.keys, keyring: during }, { batchSize: 5, onBatch: (p) => batches.push(p.scanned) });
    expect(result).toMatchObject({ scanned: 23, rewrapped: 23, skipped: 0, failed: [] });
    expect(batches).toEqual([5, 10, 15, 20, 23]);
    await expectAllUnderNewKek();
    expect(await countStaleKeys({ keys: h.stores.keys, keyring: during })).toBe(0);
    expect(await rotateDataKeys({ keys: h.stores.keys, keyring: during })).toMatchObject({ scanned: 23, rewrapped: 0 });
  });

  it("resumes after an account id", async () => {
    const ids = [...dataKeys.keys()].sort();
    const result = await rotateDataKeys({ keys: h.stores.keys, keyring: during }, { afterAccountId: ids[9]! });
    expect(result.rewrapped).toBe(13);
    expect(await countStaleKeys({ keys: h.stores.keys, keyring: during })).toBe(10);
  });

  it("never brings back a key erased during the rotation, and two rotations at once rewrap each key once", async () => {
    const ids = [...dataKeys.keys()].sort();
    const victim = ids[20]!;
    const [one, two] = await Promise.all([
      rotateDataKeys(
        { keys: h.stores.keys, keyring: during },
        { batchSize: 4, onBatch: (p) => void (p.scanned === 4 && h.stores.keys.erase({ accountId: victim, tenantId: "t", erasedAt: 1 })) },
      ),
      rotateDataKeys({ keys: h.stores.keys, keyring: during }, { batchSize: 3 }),
    ]);
    expect(one.rewrapped + two.rewrapped).toBe(22);
    await expectAllUnderNewKek([victim]);
  });

  it("reports keys wrapped by a KEK it does not have, and leaves them", async () => {
    const stranger = createKeyring([{ id: "lost", key: randomBytes(32) }], blind);
    const accountId = randomUUID();
    const lost = stranger.newDataKey(accountId).wrapped;
    await h.stores.keys.put({ accountId, tenantId: "t", wrappedKey: lost, createdAt: 0 });
    const result = await rotateDataKeys({ keys: h.stores.keys, keyring: during });
    expect(result.failed).toEqual([accountId]);
    expect(result.rewrapped).toBe(23);
    expect(await h.stores.keys.get(accountId)).toBe(lost);
    expect(await countStaleKeys({ keys: h.stores.keys, keyring: during })).toBe(1);
  });
});
