// The storage side of retention (src/domain/ports/) on every SQL backend:
// OutboxStore.purgeDelivered deletes a tenant's old delivered or abandoned
// messages and never a pending one; AuditStore.prune deletes the oldest events
// of a chain as a prefix and moves its checkpoint forward only, concurrently
// too; the audit verification starts from the checkpoint and still finds
// tampering after it.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAudit } from "../../src/domain/audit.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const DAY = 86_400_000;

describe.each(BACKENDS)("retention storage contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe("OutboxStore.purgeDelivered", () => {
    async function message(tenantId: string, createdAt: number, status: "pending" | "sent" | "failed") {
      const id = randomUUID();
      await h.stores.outbox.enqueue([{ id, tenantId, accountId: randomUUID(), kind: "verify_email", payloadSealed: "sealed", createdAt }]);
      if (status !== "pending") {
        await h.raw.updateTable("outbox").set({ status, payload: null }).where("id", "=", id).execute();
      }
      return id;
    }
    const exists = async (id: string) => (await h.raw.selectFrom("outbox").select("id").where("id", "=", id).execute()).length === 1;

    it("deletes the tenant's sent and failed messages created before the cutoff, in batches, and nothing else", async () => {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      const old = await Promise.all([1, 2, 3, 4, 5].map((i) => message(tenantId, T0 + i, i % 2 ? "sent" : "failed")));
      const oldPending = await message(tenantId, T0, "pending");
      const young = await message(tenantId, T0 + 10 * DAY, "sent");
      const otherTenant = await message(`${tenantId}-other`, T0, "sent");

      expect(await h.stores.outbox.purgeDelivered({ tenantId, createdBefore: T0 + DAY, limit: 2 })).toBe(2);
      expect(await exists(old[0]!)).toBe(false); // oldest first
      expect(await h.stores.outbox.purgeDelivered({ tenantId, createdBefore: T0 + DAY, limit: 2 })).toBe(2);
      expect(await h.stores.outbox.purgeDelivered({ tenantId, createdBefore: T0 + DAY, limit: 2 })).toBe(1);
      expect(await h.stores.outbox.purgeDelivered({ tenantId, createdBefore: T0 + DAY, limit: 2 })).toBe(0);
      for (const id of old) expect(await exists(id)).toBe(false);
      for (const id of [oldPending, young, otherTenant]) expect(await exists(id)).toBe(true);
    });
  });

  describe("AuditStore.prune and the checkpoint", () => {
    /** A chain of `n` events, one a day from T0 (the audit stamps events with this clock). */
    async function chain(n: number) {
      const tenantId = `t-${randomUUID().slice(0, 8)}`;
      let clock = T0;
      const audit = createAudit(h.stores.audit, () => clock);
      for (let i = 0; i < n; i++) {
        clock = T0 + i * DAY;
        await audit.record({
          tenantId,
          actor: "anonymous",
          action: "session.sign_in",
          target: "",
          reason: "",
          ip: "203.0.113.7",
          userAgent: "ua",
          outcome: "success",
        });
      }
      return { tenantId, audit };
    }
    const sequences = async (tenantId: string) => (await h.stores.audit.list({ tenantId, afterSequence: 0, limit: 1000 })).map((e) => e.sequence);

    it("deletes the oldest events older than the cutoff as a prefix, keeps a checkpoint, and the rest still verifies", async () => {
      const { tenantId, audit } = await chain(10);
      expect(await h.stores.audit.checkpoint(tenantId)).toBeUndefined();
      const fourth = (await h.stores.audit.list({ tenantId, afterSequence: 3, limit: 1 }))[0]!;
      expect(await h.stores.audit.prune({ tenantId, before: T0 + 3 * DAY + 1, limit: 500 })).toBe(4);
      expect(await sequences(tenantId)).toEqual([5, 6, 7, 8, 9, 10]);
      expect(await h.stores.audit.checkpoint(tenantId)).toEqual({ sequence: 4, hash: fourth.hash });
      expect(await audit.verify(tenantId)).toMatchObject({ intact: true, checkedCount: 6 });
      // In batches; never backwards; nothing younger than the cutoff.
      expect(await h.stores.audit.prune({ tenantId, before: T0 + 7 * DAY + 1, limit: 2 })).toBe(2);
      expect(await h.stores.audit.prune({ tenantId, before: T0 + 5 * DAY, limit: 500 })).toBe(0);
      expect(await h.stores.audit.prune({ tenantId, before: T0 + 7 * DAY + 1, limit: 500 })).toBe(2);
      expect(await sequences(tenantId)).toEqual([9, 10]);
      expect(await audit.verify(tenantId)).toMatchObject({ intact: true, checkedCount: 2 });
      // Pruned to the head: an empty chain that verifies, and appends go on from it.
      expect(await h.stores.audit.prune({ tenantId, before: T0 + 100 * DAY, limit: 500 })).toBe(2);
      expect(await audit.verify(tenantId)).toMatchObject({ intact: true, checkedCount: 0 });
      const next = await audit.record({ tenantId, actor: "system", action: "test.after", target: "", reason: "", ip: "", userAgent: "", outcome: "success" });
      expect(next.sequence).toBe(11);
      expect(await audit.verify(tenantId)).toMatchObject({ intact: true, checkedCount: 1 });
    });

    it("stops at the first young event even if older ones follow it (a prefix, never a gap)", async () => {
      const { tenantId } = await chain(4);
      // The second event younger than the cutoff, the third and fourth older: only the first goes.
      await h.raw
        .updateTable("audit_events")
        .set({ at: T0 + 50 * DAY })
        .where("tenant_id", "=", tenantId)
        .where("sequence", "=", 2)
        .execute();
      expect(await h.stores.audit.prune({ tenantId, before: T0 + 10 * DAY, limit: 500 })).toBe(1);
      expect(await sequences(tenantId)).toEqual([2, 3, 4]);
    });

    it("several instances pruning at once delete each event once and leave one checkpoint", async () => {
      const { tenantId, audit } = await chain(30);
      const deleted = await Promise.all(Array.from({ length: 4 }, () => h.stores.audit.prune({ tenantId, before: T0 + 20 * DAY, limit: 7 })));
      let total = deleted.reduce((a, b) => a + b, 0);
      for (let n = -1; n !== 0; total += n) n = await h.stores.audit.prune({ tenantId, before: T0 + 20 * DAY, limit: 7 });
      expect(total).toBe(20);
      expect(await sequences(tenantId)).toEqual(Array.from({ length: 10 }, (_, i) => 21 + i));
      expect((await h.stores.audit.checkpoint(tenantId))?.sequence).toBe(20);
      expect(await audit.verify(tenantId)).toMatchObject({ intact: true });
    });

    it("still finds an event deleted after the checkpoint, and a checkpoint moved by hand", async () => {
      const { tenantId, audit } = await chain(6);
      await h.stores.audit.prune({ tenantId, before: T0 + 2 * DAY, limit: 500 });
      await h.raw.deleteFrom("audit_events").where("tenant_id", "=", tenantId).where("sequence", "=", 4).execute();
      expect(await audit.verify(tenantId)).toMatchObject({ intact: false, firstBrokenSequence: 4 });
      const other = await chain(6);
      await h.stores.audit.prune({ tenantId: other.tenantId, before: T0 + 2 * DAY, limit: 500 });
      await h.raw.updateTable("audit_checkpoints").set({ sequence: 3 }).where("tenant_id", "=", other.tenantId).execute();
      await h.raw.deleteFrom("audit_events").where("tenant_id", "=", other.tenantId).where("sequence", "=", 3).execute();
      expect((await other.audit.verify(other.tenantId)).intact).toBe(false);
    });
  });
});
