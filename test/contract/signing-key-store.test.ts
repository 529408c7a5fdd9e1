// The SigningKeyStore (src/domain/ports/signing-keys.ts) on every SQL backend:
// a rotation adds the new key and retires the others at its start, in one
// transaction; only keys retired before the given time are purged.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredSigningKey } from "../../src/domain/ports/signing-keys.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);

const key = (activeFrom: number): StoredSigningKey => ({
  kid: randomUUID(),
  algorithm: "EdDSA",
  publicJwk: JSON.stringify({ kty: "OKP", crv: "Ed25519", x: randomUUID() }),
  sealedPrivateKey: `k1.${randomUUID()}`,
  createdAt: activeFrom - 10,
  activeFrom,
  retireAt: null,
});

describe.each(BACKENDS)("SigningKeyStore contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("rotates: the new key is stored whole, the others retire when it starts; purge drops only keys retired before the bound", async () => {
    const first = key(T0);
    await h.stores.signingKeys.rotateTo(first);
    expect(await h.stores.signingKeys.list()).toStrictEqual([first]);

    const second = key(T0 + 1000);
    await h.stores.signingKeys.rotateTo(second);
    expect(await h.stores.signingKeys.list()).toStrictEqual([{ ...first, retireAt: T0 + 1000 }, second]);

    const third = key(T0 + 5000);
    await h.stores.signingKeys.rotateTo(third);
    // Only keys not yet retired are retired: the first keeps its own retirement.
    expect((await h.stores.signingKeys.list()).map((k) => k.retireAt)).toStrictEqual([T0 + 1000, T0 + 5000, null]);

    expect(await h.stores.signingKeys.purgeRetired(T0 + 1000)).toBe(0); // retired at, not before
    expect(await h.stores.signingKeys.purgeRetired(T0 + 1001)).toBe(1);
    expect((await h.stores.signingKeys.list()).map((k) => k.kid)).toStrictEqual([second.kid, third.kid]);
  });
});
