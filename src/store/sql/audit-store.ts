// The audit trail over Kysely, for MySQL/MariaDB/TiDB and SQLite alike.
//
// Appends serialize on the tenant's row in `audit_heads`: the transaction's
// first statement bumps the head's sequence, which takes the row's exclusive
// lock on InnoDB/TiDB (held until commit) and the database write lock on
// SQLite (other connections and processes wait in the busy handler). Whoever
// holds it reads the head, inserts the next event and stores its hash; nobody
// else can read that head in between, so the chain never forks.
import type { Selectable } from "kysely";
import { AUDIT_GENESIS_HASH, type AuditStore, type StoredAuditEvent } from "../../domain/ports/audit.ts";
import { isUniqueViolation, type SqlDatabase } from "./database.ts";
import type { AuditEventsTable } from "./schema.ts";

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

export function createSqlAuditStore({ db }: SqlDatabase): AuditStore {
  return {
    async append(tenantId, build) {
      for (let attempt = 1; ; attempt++) {
        try {
          const appended = await db.transaction().execute(async (trx) => {
            // Write first: this takes the lock before anything is read.
            const bumped = await trx
              .updateTable("audit_heads")
              .set((eb) => ({ sequence: eb("sequence", "+", 1) }))
              .where("tenant_id", "=", tenantId)
              .executeTakeFirst();
            if (Number(bumped.numUpdatedRows) === 0) return undefined; // no chain yet
            const head = await trx.selectFrom("audit_heads").select(["sequence", "hash"]).where("tenant_id", "=", tenantId).executeTakeFirstOrThrow();
            const sequence = Number(head.sequence);
            const event = build({ sequence: sequence - 1, hash: head.hash });
            if (event.tenantId !== tenantId || event.sequence !== sequence || event.prevHash !== head.hash) {
              throw new Error("audit event does not continue the chain's head");
            }
            await trx
              .insertInto("audit_events")
              .values({
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
              })
              .execute();
            await trx.updateTable("audit_heads").set({ hash: event.hash }).where("tenant_id", "=", tenantId).execute();
            return event;
          });
          if (appended) return appended;
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
          const moved = await trx.updateTable("audit_checkpoints").set(checkpoint).where("tenant_id", "=", tenantId).where("sequence", "<", checkpoint.sequence).executeTakeFirst();
          if (Number(moved.numUpdatedRows) === 0) return 0;
        } else {
          await trx.insertInto("audit_checkpoints").values({ tenant_id: tenantId, ...checkpoint }).execute();
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
