// The TenantStore contract's administration half (src/domain/ports/) on
// every SQL backend: create, keyset-paged list, and compare-and-set updates
// that never lose a concurrent change.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import type { Tenant } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const tenant = (id: string, name = `Tenant ${id}`): Tenant => ({ id, name, settings: { ...DEFAULT_TENANT_SETTINGS, passwordMinLength: 10 }, createdAt: T0 });

describe.each(BACKENDS)("TenantStore contract (administration): %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("create() stores a new tenant and refuses an existing id without overwriting it", async () => {
    const id = randomUUID();
    expect(await h.stores.tenants.create(tenant(id, "First"))).toBe(true);
    expect(await h.stores.tenants.create(tenant(id, "Second"))).toBe(false);
    expect(await h.stores.tenants.get(id)).toEqual(tenant(id, "First"));
  });

  it("list() pages in id order after the given id", async () => {
    const prefix = `list-${randomUUID().slice(0, 8)}`;
    const ids = [`${prefix}-c`, `${prefix}-a`, `${prefix}-b`];
    for (const id of ids) await h.stores.tenants.create(tenant(id));
    const all = (await h.stores.tenants.list({ limit: 1000 })).map((t) => t.id).filter((id) => id.startsWith(prefix));
    expect(all).toEqual([`${prefix}-a`, `${prefix}-b`, `${prefix}-c`]);
    const after = await h.stores.tenants.list({ afterId: `${prefix}-a`, limit: 2 });
    expect(after.map((t) => t.id)).toEqual([`${prefix}-b`, `${prefix}-c`]);
    expect(after[0]).toEqual(tenant(`${prefix}-b`));
  });

  it("update() writes what change() returns and returns it; unknown → undefined", async () => {
    const id = randomUUID();
    await h.stores.tenants.create(tenant(id));
    const updated = await h.stores.tenants.update(id, (t) => ({ name: "Renamed", settings: { ...t.settings, inviteOnly: true } }));
    expect(updated).toEqual({ ...tenant(id), name: "Renamed", settings: { ...tenant(id).settings, inviteOnly: true } });
    expect(await h.stores.tenants.get(id)).toEqual(updated);
    expect(await h.stores.tenants.update(randomUUID(), (t) => t)).toBeUndefined();
  });

  it("update() writes nothing when change() throws", async () => {
    const id = randomUUID();
    await h.stores.tenants.create(tenant(id));
    await expect(
      h.stores.tenants.update(id, () => {
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect(await h.stores.tenants.get(id)).toEqual(tenant(id));
  });

  it("ten concurrent updates of one tenant all take effect (none is lost)", async () => {
    const id = randomUUID();
    await h.stores.tenants.create(tenant(id));
    await Promise.all(
      Array.from({ length: 10 }, () =>
        h.stores.tenants.update(id, (t) => ({ name: t.name, settings: { ...t.settings, signInPerIpLimit: t.settings.signInPerIpLimit + 1 } })),
      ),
    );
    expect((await h.stores.tenants.get(id))?.settings.signInPerIpLimit).toBe(DEFAULT_TENANT_SETTINGS.signInPerIpLimit + 10);
  });
});
