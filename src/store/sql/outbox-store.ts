// The outbox over Kysely (MySQL/MariaDB/TiDB and SQLite): queued messages,
// leases for the delivery workers, and what operators need for failed ones.
import { sql, type Transaction } from "kysely";
import type { ClaimedMessage, FailedMessage, OutboxMessage, OutboxStore } from "../../domain/ports/outbox.ts";
import type { SqlDatabase } from "./database.ts";
import type { Database } from "./schema.ts";

/** Queues messages; account stores call it inside their transactions. */
export async function insertMessages(db: Transaction<Database> | SqlDatabase["db"], messages: OutboxMessage[]): Promise<void> {
  if (messages.length === 0) return;
  await db
    .insertInto("outbox")
    .values(
      messages.map((m) => ({
        id: m.id,
        tenant_id: m.tenantId,
        account_id: m.accountId,
        kind: m.kind,
        status: "pending",
        attempts: 0,
        next_attempt_at: m.createdAt,
        locked_until: 0,
        lock_owner: null,
        last_error: null,
        last_error_class: null,
        failed_at: null,
        queued_at: null,
        payload: m.payloadSealed,
        created_at: m.createdAt,
        sent_at: null,
      })),
    )
    .execute();
}

export function createSqlOutboxStore({ db }: SqlDatabase): OutboxStore {
  /** The requeue starts the message over: due now, unleased, no attempts (its backoff restarts), its maximum age counting from now. */
  const requeued = (now: number) => ({
    status: "pending",
    next_attempt_at: now,
    locked_until: 0,
    lock_owner: null,
    attempts: 0,
    queued_at: now,
    failed_at: null,
  });

  return {
    enqueue: (messages) => insertMessages(db, messages),

    async claimDue({ now, limit, owner, leaseMs }) {
      const candidates = await db
        .selectFrom("outbox")
        .select("id")
        .where("status", "=", "pending")
        .where("next_attempt_at", "<=", now)
        .where("locked_until", "<=", now)
        .orderBy("next_attempt_at")
        .limit(limit)
        .execute();
      const claimed: ClaimedMessage[] = [];
      for (const { id } of candidates) {
        // A conditional update is the lease: whoever changes the row owns it.
        const result = await db
          .updateTable("outbox")
          .set({ locked_until: now + leaseMs, lock_owner: owner })
          .where("id", "=", id)
          .where("status", "=", "pending")
          .where("locked_until", "<=", now)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) continue;
        const row = await db.selectFrom("outbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
        if (row.payload === null) continue;
        claimed.push({
          id: row.id,
          tenantId: row.tenant_id,
          accountId: row.account_id,
          kind: row.kind,
          payloadSealed: row.payload,
          createdAt: Number(row.created_at),
          attempts: Number(row.attempts),
          queuedAt: Number(row.queued_at ?? row.created_at),
        });
      }
      return claimed;
    },

    async markSent(id, owner, at) {
      await db
        .updateTable("outbox")
        .set((eb) => ({ status: "sent", sent_at: at, payload: null, locked_until: 0, lock_owner: null, attempts: eb("attempts", "+", 1) }))
        .where("id", "=", id)
        .where("lock_owner", "=", owner)
        .execute();
    },

    async markFailed(id, owner, error, nextAttemptAt, details = {}) {
      const givenUp = nextAttemptAt === null;
      await db
        .updateTable("outbox")
        .set((eb) => ({
          status: givenUp ? "failed" : "pending",
          next_attempt_at: nextAttemptAt ?? 0,
          last_error: error.slice(0, 500),
          last_error_class: details.errorClass ?? null,
          failed_at: givenUp ? (details.at ?? null) : null,
          locked_until: 0,
          lock_owner: null,
          attempts: eb("attempts", "+", 1),
          // Given up on: no personal data kept, unless the caller keeps it (sealed) for a requeue.
          ...(givenUp && !details.keepPayload ? { payload: null } : {}),
        }))
        .where("id", "=", id)
        .where("lock_owner", "=", owner)
        .execute();
    },

    async listFailed({ tenantId, after, limit }) {
      // The outbox_status_tenant_id index: one range, in (tenant_id, id) order; the payload is never read.
      let query = db
        .selectFrom("outbox")
        .select(["id", "tenant_id", "kind", "attempts", "last_error", "last_error_class", "created_at", "failed_at", "queued_at"])
        .select(sql<number>`case when payload is null then 0 else 1 end`.as("has_payload"))
        .where("status", "=", "failed");
      if (tenantId !== undefined) query = query.where("tenant_id", "=", tenantId);
      if (after !== undefined) {
        query = query.where((eb) => eb.or([eb("tenant_id", ">", after.tenantId), eb.and([eb("tenant_id", "=", after.tenantId), eb("id", ">", after.id)])]));
      }
      const rows = await query.orderBy("tenant_id").orderBy("id").limit(limit).execute();
      return rows.map(
        (r): FailedMessage => ({
          id: r.id,
          tenantId: r.tenant_id,
          kind: r.kind,
          attempts: Number(r.attempts),
          lastError: r.last_error ?? "",
          // Rows failed before 0009 recorded no class; their only way to fail was running out of attempts.
          lastErrorClass: r.last_error_class ?? "transient",
          createdAt: Number(r.created_at),
          failedAt: r.failed_at === null ? null : Number(r.failed_at),
          queuedAt: Number(r.queued_at ?? r.created_at),
          requeueable: Number(r.has_payload) === 1,
        }),
      );
    },

    async requeue({ id, tenantId, now }) {
      let query = db.selectFrom("outbox").select(["status", "tenant_id"]).where("id", "=", id);
      if (tenantId !== undefined) query = query.where("tenant_id", "=", tenantId);
      const row = await query.executeTakeFirst();
      if (!row || row.status === "sent") return { outcome: "not_found" };
      // The update is conditional on the row still being failed with a payload: a concurrent requeue or purge wins cleanly.
      const update = await db
        .updateTable("outbox")
        .set(requeued(now))
        .where("id", "=", id)
        .where("status", "=", "failed")
        .where("payload", "is not", null)
        .executeTakeFirst();
      if (Number(update.numUpdatedRows) === 1) return { outcome: "requeued", tenantId: row.tenant_id };
      const after = await db.selectFrom("outbox").select(["status"]).where("id", "=", id).executeTakeFirst();
      // Already pending (a repeated requeue, or another operator's) counts as done.
      if (after?.status === "pending") return { outcome: "requeued", tenantId: row.tenant_id };
      return after?.status === "failed" ? { outcome: "payload_gone", tenantId: row.tenant_id } : { outcome: "not_found" };
    },

    async requeueAll({ tenantId, now }) {
      let update = db.updateTable("outbox").set(requeued(now)).where("status", "=", "failed").where("payload", "is not", null);
      if (tenantId !== undefined) update = update.where("tenant_id", "=", tenantId);
      return Number((await update.executeTakeFirst()).numUpdatedRows);
    },

    async countByStatus() {
      // Two index ranges of outbox_due (status, …); sent rows are never counted.
      const rows = await db
        .selectFrom("outbox")
        .select(["status", (eb) => eb.fn.countAll<number>().as("count")])
        .where("status", "in", ["pending", "failed"])
        .groupBy("status")
        .execute();
      const count = (status: string) => Number(rows.find((r) => r.status === status)?.count ?? 0);
      return { pending: count("pending"), failed: count("failed") };
    },

    async purgeDelivered({ tenantId, createdBefore, limit }) {
      // The outbox_tenant_status_created index: two ranges (sent, failed), oldest first.
      const due = await db
        .selectFrom("outbox")
        .select("id")
        .where("tenant_id", "=", tenantId)
        .where("status", "in", ["sent", "failed"])
        .where("created_at", "<", createdBefore)
        .orderBy("created_at")
        .limit(limit)
        .execute();
      if (due.length === 0) return 0;
      // Conditional again: only what is still delivered (ids come from another statement).
      const result = await db
        .deleteFrom("outbox")
        .where(
          "id",
          "in",
          due.map((r) => r.id),
        )
        .where("status", "in", ["sent", "failed"])
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async listForAccount({ tenantId, accountId, afterId, limit }) {
      // The outbox_account index; the payload is never read.
      let query = db
        .selectFrom("outbox")
        .select(["id", "kind", "status", "attempts", "created_at", "sent_at"])
        .where("account_id", "=", accountId)
        .where("tenant_id", "=", tenantId);
      if (afterId !== undefined) query = query.where("id", ">", afterId);
      const rows = await query.orderBy("id").limit(limit).execute();
      return rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        status: r.status,
        attempts: Number(r.attempts),
        createdAt: Number(r.created_at),
        sentAt: r.sent_at === null ? null : Number(r.sent_at),
      }));
    },
  };
}
