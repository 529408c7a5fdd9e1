// The audit trail over Kysely (MySQL/MariaDB/TiDB and SQLite). Appends serialize
// on the tenant's audit_heads row, locked by an append's first statement, so the
// chain never forks; a busy tenant's appends share one transaction (group commit),
// and each caller resolves only once its own event is committed, so no
// acknowledged event can be lost.
import type { Selectable, Transaction } from "kysely";
import { AUDIT_GENESIS_HASH, type AuditHead, type AuditStore, type StoredAuditEvent } from "../../domain/ports/audit.ts";
import { isUniqueViolation, type SqlDatabase, type SqlDialectName } from "./database.ts";
import type { AuditEventsTable, Database } from "./schema.ts";

/** MySQL deadlock (1213) or lock wait timeout (1205): the transaction was rolled back and can be retried. */
function isRetryableLockError(error: unknown): boolean {
  const errno = (error as { errno?: number } | null)?.errno;
  return errno === 1213 || errno === 1205;
}

function toEvent(row: Selectable<AuditEventsTable>): StoredAuditEvent {
  return {
    tenantId: row.tenant_id,
    sequence: Number(row.sequence),
    at: Number(row.at),
    actor: row.actor,
    action: row.action,
    target: row.target,
    reason: row.reason,
    ip: row.ip,
    userAgent: row.user_agent,
    outcome: row.outcome,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

const MAX_ATTEMPTS = 5;

/** Events per transaction at most (SQLite allows 32,766 bound values: 12 per event). */
const MAX_BATCH = 500;

interface PendingAppend {
  build: (head: AuditHead) => StoredAuditEvent;
  resolve: (event: StoredAuditEvent) => void;
  reject: (error: unknown) => void;
}

function toRow(event: StoredAuditEvent) {
  return {
    tenant_id: event.tenantId,
    sequence: event.sequence,
    at: event.at,
    actor: event.actor,
    action: event.action,
    target: event.target,
    reason: event.reason,
    ip: event.ip,
    user_agent: event.userAgent,
    outcome: event.outcome,
    prev_hash: event.prevHash,
    hash: event.hash,
  };
}

/**
 * Locks the tenant's chain head for the transaction and reads it; undefined when the
 * tenant has no chain yet. MySQL: one locking read (SELECT … FOR UPDATE reads the latest
 * committed head and holds its row lock until commit). SQLite has no FOR UPDATE: a write
 * first takes the database's write lock, then the head is read.
 */
async function lockHead(trx: Transaction<Database>, dialect: SqlDialectName, tenantId: string): Promise<AuditHead | undefined> {
  if (dialect === "mysql") {
    const row = await trx.selectFrom("audit_heads").select(["sequence", "hash"]).where("tenant_id", "=", tenantId).forUpdate().executeTakeFirst();
    return row && { sequence: Number(row.sequence), hash: row.hash };
  }
  const bumped = await trx
    .updateTable("audit_heads")
    .set((eb) => ({ sequence: eb("sequence", "+", 1) }))
    .where("tenant_id", "=", tenantId)
    .executeTakeFirst();
  if (Number(bumped.numUpdatedRows) === 0) return undefined;
  const row = await trx.selectFrom("audit_heads").select(["sequence", "hash"]).where("tenant_id", "=", tenantId).executeTakeFirstOrThrow();
  return { sequence: Number(row.sequence) - 1, hash: row.hash };
}

export function createSqlAuditStore({ db, dialect }: SqlDatabase): AuditStore {
  /** Appends waiting for the tenant's transaction in flight, by tenant. */
  const waiting = new Map<string, PendingAppend[]>();

  /**
   * Appends `batch` in chain order in one transaction, retried whole after a
   * deadlock; settles each caller after the commit. A `build` that throws fails
   * its own caller only, and appends nothing for it.
   */
  async function appendBatch(tenantId: string, batch: PendingAppend[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let outcomes: Array<{ event: StoredAuditEvent } | { error: unknown }> = [];
      try {
        const appended = await db.transaction().execute(async (trx) => {
          outcomes = [];
          const locked = await lockHead(trx, dialect, tenantId);
          if (!locked) return false; // no chain yet
          let head = locked;
          const events: StoredAuditEvent[] = [];
          for (const pending of batch) {
            try {
              const event = pending.build(head);
              if (event.tenantId !== tenantId || event.sequence !== head.sequence + 1 || event.prevHash !== head.hash) {
                throw new Error("audit event does not continue the chain's head");
              }
              events.push(event);
              outcomes.push({ event });
              head = { sequence: event.sequence, hash: event.hash };
            } catch (error) {
              outcomes.push({ error });
            }
          }
          if (events.length > 0) await trx.insertInto("audit_events").values(events.map(toRow)).execute();
          // The head ends at the last event (or back where it was when every build failed).
          await trx.updateTable("audit_heads").set({ sequence: head.sequence, hash: head.hash }).where("tenant_id", "=", tenantId).execute();
          return true;
        });
        if (appended) {
          batch.forEach((pending, i) => {
            const outcome = outcomes[i]!;
            if ("event" in outcome) pending.resolve(outcome.event);
            else pending.reject(outcome.error);
          });
          return;
        }
        // The tenant's first event: create its head outside any transaction (a
        // concurrent creator may win; either way the head exists), then append.
        try {
          await db.insertInto("audit_heads").values({ tenant_id: tenantId, sequence: 0, hash: AUDIT_GENESIS_HASH }).execute();
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
        }
      } catch (error) {
        if (!isRetryableLockError(error)) throw error;
      }
      if (attempt >= MAX_ATTEMPTS) throw new Error(`audit append for tenant ${tenantId} did not get the chain's lock after ${MAX_ATTEMPTS} attempts`);
    }
  }

  /** Appends whatever waits for the tenant, batch after batch, until nothing does. */
  async function drain(tenantId: string): Promise<void> {
    for (;;) {
      const queue = waiting.get(tenantId);
      if (!queue || queue.length === 0) {
        waiting.delete(tenantId);
        return;
      }
      const batch = queue.splice(0, MAX_BATCH);
      try {
        await appendBatch(tenantId, batch);
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
  }

  return {
    append(tenantId, build) {
      return new Promise<StoredAuditEvent>((resolve, reject) => {
        const queue = waiting.get(tenantId);
        if (queue) {
          queue.push({ build, resolve, reject }); // the transaction in flight's drain takes it next
          return;
        }
        waiting.set(tenantId, [{ build, resolve, reject }]);
        void drain(tenantId);
      });
    },

    async list({ tenantId, actor, target, action, atOrAfter, before, afterSequence, limit }) {
      let query = db.selectFrom("audit_events").selectAll().where("tenant_id", "=", tenantId).where("sequence", ">", afterSequence);
      if (actor !== undefined) query = query.where("actor", "=", actor);
      if (target !== undefined) query = query.where("target", "=", target);
      if (action !== undefined) query = query.where("action", "=", action);
      if (atOrAfter !== undefined) query = query.where("at", ">=", atOrAfter);
      if (before !== undefined) query = query.where("at", "<", before);
      const rows = await query.orderBy("sequence").limit(limit).execute();
      return rows.map(toEvent);
    },

    async head(tenantId) {
      const row = await db.selectFrom("audit_heads").select(["sequence", "hash"]).where("tenant_id", "=", tenantId).executeTakeFirst();
      return row && { sequence: Number(row.sequence), hash: row.hash };
    },

    async checkpoint(tenantId) {
      const row = await db.selectFrom("audit_checkpoints").select(["sequence", "hash"]).where("tenant_id", "=", tenantId).executeTakeFirst();
      return row && { sequence: Number(row.sequence), hash: row.hash };
    },

    async prune({ tenantId, before, limit }) {
      const pruned = db.transaction().execute(async (trx) => {
        const current = await trx.selectFrom("audit_checkpoints").select("sequence").where("tenant_id", "=", tenantId).executeTakeFirst();
        const from = current ? Number(current.sequence) : 0;
        // The oldest events, in chain order; the prefix ends at the first one too young.
        const oldest = await trx
          .selectFrom("audit_events")
          .select(["sequence", "hash", "at"])
          .where("tenant_id", "=", tenantId)
          .where("sequence", ">", from)
          .orderBy("sequence")
          .limit(limit)
          .execute();
        const young = oldest.findIndex((e) => Number(e.at) >= before);
        const prefix = young === -1 ? oldest : oldest.slice(0, young);
        const last = prefix[prefix.length - 1];
        if (!last) return 0;
        const checkpoint = { sequence: Number(last.sequence), hash: last.hash };
        // Forward only: of two concurrent runs, the one behind changes nothing (or, for a
        // chain's first checkpoint, fails on its primary key and is caught below).
        if (current) {
          const moved = await trx
            .updateTable("audit_checkpoints")
            .set(checkpoint)
            .where("tenant_id", "=", tenantId)
            .where("sequence", "<", checkpoint.sequence)
            .executeTakeFirst();
          if (Number(moved.numUpdatedRows) === 0) return 0;
        } else {
          await trx
            .insertInto("audit_checkpoints")
            .values({ tenant_id: tenantId, ...checkpoint })
            .execute();
        }
        const deleted = await trx
          .deleteFrom("audit_events")
          .where("tenant_id", "=", tenantId)
          .where("sequence", ">", from)
          .where("sequence", "<=", checkpoint.sequence)
          .executeTakeFirst();
        return Number(deleted.numDeletedRows);
      });
      return pruned.catch((error: unknown) => {
        if (isUniqueViolation(error) || isRetryableLockError(error)) return 0; // another instance is pruning
        throw error;
      });
    },

    async nextChain(afterTenantId) {
      // Two index seeks: a chain exists where there is a head or an event (either may have been tampered away).
      const [fromEvents, fromHeads] = await Promise.all([
        db.selectFrom("audit_events").select("tenant_id").where("tenant_id", ">", afterTenantId).orderBy("tenant_id").limit(1).executeTakeFirst(),
        db.selectFrom("audit_heads").select("tenant_id").where("tenant_id", ">", afterTenantId).orderBy("tenant_id").limit(1).executeTakeFirst(),
      ]);
      const candidates = [fromEvents?.tenant_id, fromHeads?.tenant_id].filter((id): id is string => id !== undefined);
      return candidates.sort()[0];
    },
  };
}
