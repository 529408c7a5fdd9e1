// Domain events and webhooks over Kysely (MySQL/MariaDB/TiDB and SQLite):
// events appended in the transactions of the changes (insertEvents), numbered
// and fanned out by the dispatcher, deliveries leased like the outbox's rows.
import type { Kysely, Selectable, Transaction } from "kysely";
import type { DomainEvent, EventType, SequencedEvent } from "../../domain/events.ts";
import type { ClaimedDelivery, EventStore, StoredWebhook, WebhookDelivery, WebhookStore } from "../../domain/ports/events.ts";
import type { Database, EventsTable, WebhookDeliveriesTable, WebhooksTable } from "./schema.ts";

type Db = Kysely<Database> | Transaction<Database>;

/** Writes events inside the caller's transaction (the change that caused them). */
export async function insertEvents(db: Db, events: readonly DomainEvent[] | undefined): Promise<void> {
  if (!events || events.length === 0) return;
  await db
    .insertInto("events")
    .values(
      events.map((e) => ({
        id: e.id,
        tenant_id: e.tenantId,
        account_id: e.accountId,
        type: e.type,
        data: JSON.stringify(e.data),
        sequence: null,
        created_at: e.createdAt,
      })),
    )
    .execute();
}

function toEvent(row: Selectable<EventsTable>): DomainEvent {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    accountId: row.account_id,
    type: row.type as EventType,
    data: JSON.parse(row.data),
    createdAt: Number(row.created_at),
  };
}

function toWebhook(row: Selectable<WebhooksTable>): StoredWebhook {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    url: row.url,
    eventTypes: JSON.parse(row.event_types),
    secretSealed: row.secret,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function toDelivery(row: Selectable<WebhookDeliveriesTable>, eventType: string): WebhookDelivery {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    eventType,
    accountId: row.account_id,
    sequence: Number(row.sequence),
    status: row.status,
    attempts: Number(row.attempts),
    nextAttemptAt: Number(row.next_attempt_at),
    lastError: row.last_error ?? "",
    createdAt: Number(row.created_at),
    deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
    queuedAt: Number(row.queued_at),
  };
}

export function createSqlEventStore(db: Kysely<Database>): EventStore {
  return {
    append: (events) => insertEvents(db, events),

    async purgeDelivered({ tenantId, createdBefore, limit }) {
      return db.transaction().execute(async (trx) => {
        // The first event of the stream that must stay: too new, or still needed by a delivery.
        const blocker = await trx
          .selectFrom("events")
          .select((eb) => eb.fn.min("sequence").as("first"))
          .where("tenant_id", "=", tenantId)
          .where("sequence", "is not", null)
          .where((eb) =>
            eb.or([
              eb("created_at", ">=", createdBefore),
              eb("id", "in", eb.selectFrom("webhook_deliveries").select("event_id").where("tenant_id", "=", tenantId).where("status", "!=", "delivered")),
            ]),
          )
          .executeTakeFirst();
        const first = blocker?.first === null || blocker?.first === undefined ? undefined : Number(blocker.first);
        let query = trx
          .selectFrom("events")
          .select(["id", "sequence"])
          .where("tenant_id", "=", tenantId)
          .where("sequence", "is not", null)
          .where("created_at", "<", createdBefore);
        if (first !== undefined) query = query.where("sequence", "<", first);
        const due = await query.orderBy("sequence").limit(limit).execute();
        if (due.length === 0) return 0;
        const ids = due.map((e) => e.id);
        await trx.deleteFrom("webhook_deliveries").where("event_id", "in", ids).execute();
        await trx.deleteFrom("events").where("id", "in", ids).execute();
        const through = Number(due[due.length - 1]!.sequence);
        const updated = await trx
          .updateTable("event_watermarks")
          .set({ purged_through: through })
          .where("tenant_id", "=", tenantId)
          .where("purged_through", "<", through)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) === 0) {
          const existing = await trx.selectFrom("event_watermarks").select("tenant_id").where("tenant_id", "=", tenantId).executeTakeFirst();
          if (!existing) await trx.insertInto("event_watermarks").values({ tenant_id: tenantId, purged_through: through }).execute();
        }
        return due.length;
      });
    },

    async purgedThrough(tenantId) {
      const row = await db.selectFrom("event_watermarks").select("purged_through").where("tenant_id", "=", tenantId).executeTakeFirst();
      return row ? Number(row.purged_through) : 0;
    },

    async listForAccount({ tenantId, accountId, afterId, limit }) {
      let query = db.selectFrom("events").selectAll().where("account_id", "=", accountId).where("tenant_id", "=", tenantId);
      if (afterId !== undefined) query = query.where("id", ">", afterId);
      return (await query.orderBy("id").limit(limit).execute()).map(toEvent);
    },

    async sequence({ limit, now, newId }) {
      return db.transaction().execute(async (trx) => {
        const due = await trx.selectFrom("events").selectAll().where("sequence", "is", null).orderBy("id").limit(limit).execute();
        if (due.length === 0) return 0;
        const top = await trx
          .selectFrom("events")
          .select((eb) => eb.fn.max("sequence").as("top"))
          .executeTakeFirstOrThrow();
        let next = Number(top.top ?? 0);
        const hooksOf = new Map<string, StoredWebhook[]>();
        for (const row of due) {
          next++;
          await trx.updateTable("events").set({ sequence: next }).where("id", "=", row.id).where("sequence", "is", null).execute();
          let hooks = hooksOf.get(row.tenant_id);
          if (!hooks) {
            hooks = (await trx.selectFrom("webhooks").selectAll().where("tenant_id", "=", row.tenant_id).orderBy("id").execute()).map(toWebhook);
            hooksOf.set(row.tenant_id, hooks);
          }
          const subscribed = hooks.filter((h) => h.eventTypes.length === 0 || h.eventTypes.includes(row.type));
          if (subscribed.length === 0) continue;
          await trx
            .insertInto("webhook_deliveries")
            .values(
              subscribed.map((h) => ({
                id: newId(),
                tenant_id: row.tenant_id,
                webhook_id: h.id,
                event_id: row.id,
                account_id: row.account_id,
                sequence: next,
                status: "pending",
                attempts: 0,
                next_attempt_at: now,
                locked_until: 0,
                lock_owner: null,
                last_error: null,
                created_at: now,
                delivered_at: null,
                queued_at: now,
              })),
            )
            .execute();
        }
        return due.length;
      });
    },

    async readAfter({ tenantId, afterSequence, types, limit }) {
      let query = db.selectFrom("events").selectAll().where("tenant_id", "=", tenantId).where("sequence", ">", afterSequence);
      if (types && types.length > 0) query = query.where("type", "in", [...types]);
      const rows = await query.orderBy("sequence").limit(limit).execute();
      return rows.map((row): SequencedEvent => ({ ...toEvent(row), sequence: Number(row.sequence) }));
    },

    async lastSequence(tenantId) {
      const row = await db
        .selectFrom("events")
        .select((eb) => eb.fn.max("sequence").as("top"))
        .where("tenant_id", "=", tenantId)
        .executeTakeFirst();
      return Number(row?.top ?? 0);
    },
  };
}

export function createSqlWebhookStore(db: Kysely<Database>): WebhookStore {
  return {
    async create(webhook) {
      await db
        .insertInto("webhooks")
        .values({
          id: webhook.id,
          tenant_id: webhook.tenantId,
          url: webhook.url,
          event_types: JSON.stringify(webhook.eventTypes),
          secret: webhook.secretSealed,
          created_at: webhook.createdAt,
          updated_at: webhook.updatedAt,
        })
        .execute();
    },

    async get(tenantId, id) {
      const row = await db.selectFrom("webhooks").selectAll().where("id", "=", id).where("tenant_id", "=", tenantId).executeTakeFirst();
      return row && toWebhook(row);
    },

    async list(tenantId) {
      return (await db.selectFrom("webhooks").selectAll().where("tenant_id", "=", tenantId).orderBy("id").execute()).map(toWebhook);
    },

    async update({ tenantId, id, url, eventTypes, at }) {
      const result = await db
        .updateTable("webhooks")
        .set({ url, event_types: JSON.stringify(eventTypes), updated_at: at })
        .where("id", "=", id)
        .where("tenant_id", "=", tenantId)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return undefined;
      return this.get(tenantId, id);
    },

    async delete(tenantId, id) {
      return db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom("webhooks").where("id", "=", id).where("tenant_id", "=", tenantId).executeTakeFirst();
        if (Number(result.numDeletedRows) !== 1) return false;
        await trx.deleteFrom("webhook_deliveries").where("webhook_id", "=", id).execute();
        return true;
      });
    },

    async claimDue({ now, limit, owner, leaseMs }) {
      const candidates = await db
        .selectFrom("webhook_deliveries")
        .select(["id", "webhook_id", "account_id", "sequence"])
        .where("status", "=", "pending")
        .where("next_attempt_at", "<=", now)
        .where("locked_until", "<=", now)
        .orderBy("next_attempt_at")
        .orderBy("sequence")
        .limit(limit)
        .execute();
      const claimed: ClaimedDelivery[] = [];
      for (const candidate of candidates) {
        if (candidate.account_id !== null) {
          // In order per account: an earlier delivery of this webhook about the account goes first.
          const earlier = await db
            .selectFrom("webhook_deliveries")
            .select("id")
            .where("webhook_id", "=", candidate.webhook_id)
            .where("account_id", "=", candidate.account_id)
            .where("status", "=", "pending")
            .where("sequence", "<", candidate.sequence)
            .limit(1)
            .executeTakeFirst();
          if (earlier) continue;
        }
        // A conditional update is the lease: whoever changes the row owns it.
        const leased = await db
          .updateTable("webhook_deliveries")
          .set({ locked_until: now + leaseMs, lock_owner: owner })
          .where("id", "=", candidate.id)
          .where("status", "=", "pending")
          .where("locked_until", "<=", now)
          .executeTakeFirst();
        if (Number(leased.numUpdatedRows) !== 1) continue;
        const row = await db.selectFrom("webhook_deliveries").selectAll().where("id", "=", candidate.id).executeTakeFirst();
        const event = row && (await db.selectFrom("events").selectAll().where("id", "=", row.event_id).executeTakeFirst());
        const webhook = row && (await db.selectFrom("webhooks").selectAll().where("id", "=", row.webhook_id).executeTakeFirst());
        if (!row || !event || !webhook) {
          // Its event was erased or its webhook deleted meanwhile: nothing is left to send.
          await db.deleteFrom("webhook_deliveries").where("id", "=", candidate.id).where("lock_owner", "=", owner).execute();
          continue;
        }
        claimed.push({ ...toDelivery(row, event.type), event: toEvent(event), webhook: toWebhook(webhook) });
      }
      return claimed;
    },

    async markDelivered(id, owner, at) {
      await db
        .updateTable("webhook_deliveries")
        .set((eb) => ({ status: "delivered", delivered_at: at, locked_until: 0, lock_owner: null, last_error: null, attempts: eb("attempts", "+", 1) }))
        .where("id", "=", id)
        .where("lock_owner", "=", owner)
        .execute();
    },

    async markFailed(id, owner, error, nextAttemptAt, _at) {
      await db
        .updateTable("webhook_deliveries")
        .set((eb) => ({
          status: nextAttemptAt === null ? "failed" : "pending",
          next_attempt_at: nextAttemptAt ?? 0,
          last_error: error.slice(0, 500),
          locked_until: 0,
          lock_owner: null,
          attempts: eb("attempts", "+", 1),
        }))
        .where("id", "=", id)
        .where("lock_owner", "=", owner)
        .execute();
    },

    async listDeliveries({ tenantId, webhookId, status, beforeSequence, limit }) {
      let query = db
        .selectFrom("webhook_deliveries")
        .innerJoin("events", "events.id", "webhook_deliveries.event_id")
        .selectAll("webhook_deliveries")
        .select("events.type as event_type")
        .where("webhook_deliveries.webhook_id", "=", webhookId)
        .where("webhook_deliveries.tenant_id", "=", tenantId);
      if (status !== undefined) query = query.where("webhook_deliveries.status", "=", status);
      if (beforeSequence !== undefined) query = query.where("webhook_deliveries.sequence", "<", beforeSequence);
      // The webhook_deliveries_webhook index: one event is delivered once per webhook, so its number is a key.
      const rows = await query.orderBy("webhook_deliveries.sequence", "desc").limit(limit).execute();
      return rows.map((row) => toDelivery(row, row.event_type));
    },

    async requeue({ tenantId, webhookId, deliveryId, now }) {
      const result = await db
        .updateTable("webhook_deliveries")
        .set({ status: "pending", next_attempt_at: now, locked_until: 0, lock_owner: null, attempts: 0, queued_at: now, delivered_at: null })
        .where("id", "=", deliveryId)
        .where("webhook_id", "=", webhookId)
        .where("tenant_id", "=", tenantId)
        .where("status", "in", ["failed", "delivered", "pending"])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}
