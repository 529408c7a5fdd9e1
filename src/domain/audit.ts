// The audit trail: append-only, one hash chain per tenant.
//
// Each event's hash is SHA-256 over a canonical encoding of the previous
// event's hash, the event's position and every field (auditHash below), so
// changing, removing or reordering a stored event breaks every later link.
// Why one chain per tenant rather than one for the deployment: a tenant's
// admin can verify every link of their own chain without seeing (or counting)
// another tenant's events, sequences are contiguous per tenant so a deleted
// event shows as a gap, and appends in different tenants never wait for each
// other. `verify()` with no tenant checks every chain (the CLI does).
import { createHash } from "node:crypto";
import type { AuditEvent, AuditEventInput, AuditLog } from "./audit-log.ts";
import { DomainError, invalidArgument } from "./errors.ts";
import { AUDIT_GENESIS_HASH, type AuditAppender, type AuditHead, type AuditReader, type StoredAuditEvent } from "./ports/audit.ts";
import type { RequestMeta } from "./sessions.ts";

export const AUDIT_PAGE_SIZE_DEFAULT = 50;
export const AUDIT_PAGE_SIZE_MAX = 500;
/** Events read per query while verifying: memory stays flat however long the chain. */
const VERIFY_BATCH = 500;

/** Column widths (code points). Identifiers that do not fit are a bug; free text is cut to fit. */
const WIDTH = { actor: 128, action: 64, target: 128, reason: 1000, ip: 64, userAgent: 512, outcome: 64 } as const;

export interface AuditListFilter {
  tenantId: string;
  actor?: string | undefined;
  target?: string | undefined;
  action?: string | undefined;
  /** Only events at or after this time (epoch ms). */
  after?: number | undefined;
  /** Only events before this time (epoch ms). */
  before?: number | undefined;
  /** 0 for the default (50); at most 500. */
  pageSize: number;
  /** "" for the first page, else the nextPageToken of the previous page (with the same filters). */
  pageToken: string;
}

export interface AuditPage {
  /** Oldest first. */
  events: AuditEvent[];
  /** "" on the last page. */
  nextPageToken: string;
}

/**
 * What is wrong at the first broken link: the event's hash does not match its
 * fields (hash_mismatch), it does not commit to its predecessor (link_mismatch),
 * an event is missing (missing: the sequence named is absent), or the chain's
 * recorded head does not match its last event (head_mismatch).
 */
export type AuditBreak = "hash_mismatch" | "link_mismatch" | "missing" | "head_mismatch";

export interface AuditVerification {
  intact: boolean;
  /** The first broken sequence of the (first) broken chain; 0 when intact. */
  firstBrokenSequence: number;
  /** Events whose hash and link were checked. */
  checkedCount: number;
  /** Every broken chain: its tenant, first broken sequence and what is wrong there. */
  broken: Array<{ tenantId: string; sequence: number; problem: AuditBreak }>;
}

export interface Audit extends AuditLog {
  list(filter: AuditListFilter): Promise<AuditPage>;
  /** Checks one tenant's chain, or every chain when tenantId is undefined, reading it in batches. */
  verify(tenantId?: string): Promise<AuditVerification>;
}

type HashedFields = Omit<StoredAuditEvent, "hash">;

/**
 * The event's hash: hex SHA-256 of the JSON array
 * ["identity.audit.v1", tenantId, sequence, prevHash, at, actor, action, target, reason, ip, userAgent, outcome]
 * (JSON.stringify: strings escaped, integers in decimal). Anyone can recompute it from a dump.
 */
export function auditHash(e: HashedFields): string {
  const canonical = JSON.stringify([
    "identity.audit.v1",
    e.tenantId,
    e.sequence,
    e.prevHash,
    e.at,
    e.actor,
    e.action,
    e.target,
    e.reason,
    e.ip,
    e.userAgent,
    e.outcome,
  ]);
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

/** Replaces lone surrogates (which no database stores as given) so the hashed text is the stored text. */
function wellFormed(value: string): string {
  return value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

function cut(value: string, width: number): string {
  const text = wellFormed(value);
  if (text.length <= width) return text;
  const points = Array.from(text);
  return points.length <= width ? text : points.slice(0, width).join("");
}

function identifier(name: keyof typeof WIDTH, value: string): string {
  const text = wellFormed(value);
  if (Array.from(text).length > WIDTH[name]) throw new Error(`audit ${name} is longer than ${WIDTH[name]} characters`);
  // Targets and actors name ids ("account:<id>"), never addresses: personal data stays out of the log.
  if (name !== "action" && text.includes("@")) throw new Error(`audit ${name} must name an id, not an email address`);
  return text;
}

// Page tokens: base64url("a1." + last sequence + "." + filter fingerprint).
// The fingerprint ties a token to the tenant and filters it was issued for.
function fingerprint(filter: AuditListFilter): string {
  const key = JSON.stringify([
    filter.tenantId,
    filter.actor ?? null,
    filter.target ?? null,
    filter.action ?? null,
    filter.after ?? null,
    filter.before ?? null,
  ]);
  return createHash("sha256").update(key).digest("base64url").slice(0, 12);
}

function encodeToken(sequence: number, filter: AuditListFilter): string {
  return Buffer.from(`a1.${sequence}.${fingerprint(filter)}`).toString("base64url");
}

function decodeToken(token: string, filter: AuditListFilter): number {
  if (token === "") return 0;
  const malformed = () => invalidArgument("page_token", "is not a next_page_token of a previous call", "PAGE_TOKEN_INVALID");
  if (token.length > 100 || !/^[A-Za-z0-9_-]+$/.test(token)) throw malformed();
  const decoded = Buffer.from(token, "base64url").toString("latin1");
  const match = /^a1\.([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{12})$/.exec(decoded);
  // Only the canonical encoding is accepted (Node's decoder skips stray characters).
  if (!match || Buffer.from(decoded, "latin1").toString("base64url") !== token) throw malformed();
  const sequence = Number(match[1]);
  if (!Number.isSafeInteger(sequence)) throw malformed();
  if (match[2] !== fingerprint(filter))
    throw invalidArgument("page_token", "was issued for other filters; keep the filters while paging", "PAGE_TOKEN_INVALID");
  return sequence;
}

function optionalFilter(field: string, value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (value.length > 256) throw invalidArgument(field, "is too long");
  return value;
}

/** Records, lists and verifies the trail: appends and reads, never prunes (retention does). */
export function createAudit(store: AuditAppender & AuditReader, now: () => number): Audit {
  async function verifyChain(tenantId: string): Promise<{ checked: number; broken?: { sequence: number; problem: AuditBreak } }> {
    // The head first: every event up to it is committed (an append writes both in one transaction).
    // Events appended while we read are after it and are left for the next check.
    const head = await store.head(tenantId);
    // A chain whose oldest events retention deleted starts at its checkpoint.
    let last: AuditHead = (await store.checkpoint(tenantId)) ?? { sequence: 0, hash: AUDIT_GENESIS_HASH };
    let checked = 0;
    const broken = (sequence: number, problem: AuditBreak) => ({ checked, broken: { sequence, problem } });
    for (;;) {
      if (head && last.sequence >= head.sequence) break;
      const batch = await store.list({ tenantId, afterSequence: last.sequence, limit: VERIFY_BATCH });
      for (const event of batch) {
        if (head && event.sequence > head.sequence) break;
        if (event.sequence !== last.sequence + 1) {
          // Retention may have pruned past us while we read: go on from its checkpoint.
          const moved = await store.checkpoint(tenantId);
          if (moved && moved.sequence > last.sequence && moved.sequence < event.sequence) {
            last = moved;
            if (event.sequence !== last.sequence + 1) return broken(last.sequence + 1, "missing");
          } else return broken(last.sequence + 1, "missing");
        }
        if (event.prevHash !== last.hash) return broken(event.sequence, "link_mismatch");
        if (auditHash(event) !== event.hash) return broken(event.sequence, "hash_mismatch");
        checked++;
        last = { sequence: event.sequence, hash: event.hash };
      }
      if (batch.length < VERIFY_BATCH) break;
    }
    if (!head) return checked === 0 ? { checked } : broken(last.sequence, "head_mismatch");
    if (last.sequence < head.sequence) return broken(last.sequence + 1, "missing"); // the tail was cut
    if (last.hash !== head.hash) return broken(head.sequence, "head_mismatch");
    // An event beyond the head that the head never recorded (the head was wound back).
    const [beyond] = await store.list({ tenantId, afterSequence: head.sequence, limit: 1 });
    if (beyond) {
      const current = await store.head(tenantId);
      if (!current || current.sequence < beyond.sequence) return broken(head.sequence + 1, "head_mismatch");
    }
    return { checked };
  }

  return {
    async record(input: AuditEventInput) {
      const fields = {
        actor: identifier("actor", input.actor),
        action: identifier("action", input.action),
        target: identifier("target", input.target),
        reason: cut(input.reason, WIDTH.reason),
        ip: cut(input.ip, WIDTH.ip),
        userAgent: cut(input.userAgent, WIDTH.userAgent),
        outcome: cut(input.outcome, WIDTH.outcome),
      };
      const stored = await store.append(input.tenantId, (head) => {
        // Stamped under the chain's lock, so times follow the chain's order on one clock.
        const event: HashedFields = { tenantId: input.tenantId, sequence: head.sequence + 1, at: now(), ...fields, prevHash: head.hash };
        return { ...event, hash: auditHash(event) };
      });
      return stored;
    },

    async list(filter) {
      if (!Number.isInteger(filter.pageSize) || filter.pageSize < 0) throw invalidArgument("page_size", "must not be negative");
      const pageSize = Math.min(filter.pageSize || AUDIT_PAGE_SIZE_DEFAULT, AUDIT_PAGE_SIZE_MAX);
      const normalized: AuditListFilter = {
        ...filter,
        actor: optionalFilter("actor", filter.actor),
        target: optionalFilter("target", filter.target),
        action: optionalFilter("action", filter.action),
      };
      if (normalized.after !== undefined && normalized.before !== undefined && normalized.before <= normalized.after) {
        throw invalidArgument("before", "must be later than after");
      }
      const afterSequence = decodeToken(filter.pageToken, normalized);
      const rows = await store.list({
        tenantId: filter.tenantId,
        ...(normalized.actor !== undefined ? { actor: normalized.actor } : {}),
        ...(normalized.target !== undefined ? { target: normalized.target } : {}),
        ...(normalized.action !== undefined ? { action: normalized.action } : {}),
        ...(normalized.after !== undefined ? { atOrAfter: normalized.after } : {}),
        ...(normalized.before !== undefined ? { before: normalized.before } : {}),
        afterSequence,
        limit: pageSize + 1,
      });
      const events = rows.slice(0, pageSize);
      const lastEvent = events[events.length - 1];
      return { events, nextPageToken: rows.length > pageSize && lastEvent ? encodeToken(lastEvent.sequence, normalized) : "" };
    },

    async verify(tenantId) {
      const result: AuditVerification = { intact: true, firstBrokenSequence: 0, checkedCount: 0, broken: [] };
      const check = async (id: string) => {
        const { checked, broken } = await verifyChain(id);
        result.checkedCount += checked;
        if (broken) result.broken.push({ tenantId: id, ...broken });
      };
      if (tenantId !== undefined) await check(tenantId);
      else for (let id = await store.nextChain(""); id !== undefined; id = await store.nextChain(id)) await check(id);
      const first = result.broken[0];
      if (first) Object.assign(result, { intact: false, firstBrokenSequence: first.sequence });
      return result;
    },
  };
}

/** Names for the security events of one flow: "<base>", "<base>_failed", and the rate-limit event. */
export interface SecurityEventNames {
  /** Recorded on success, e.g. "session.sign_in"; failures record "<action>_failed". */
  action: string;
  /** Recorded when the flow is refused by a rate limit, e.g. "session.rate_limited". */
  rateLimited: string;
}

/** Whom a credential flow's event concerns, as far as the flow got. */
export interface SecuritySubject {
  /** When the tenant came from a token rather than the call. */
  tenantId?: string;
  /** The target account; absent (recorded as "") until the flow knows it, or for an unknown address. */
  accountId?: string;
  /** What to record instead of "success" when the flow succeeded in a way worth telling apart (a sign-up of a taken address). */
  outcome?: string;
}

/** A credential flow's outcome: its value or the error it was refused with, and whom it concerned. */
export type SecurityAttempt<T> = { ok: true; value: T; subject: SecuritySubject } | { ok: false; error: unknown; subject: SecuritySubject };

export interface SecurityEvents {
  /**
   * Runs a credential flow and records its outcome as a security event by
   * `actor` ("anonymous" unless the caller is signed in: "account:<id>", see
   * actorOf): success, a refusal (unauthenticated, failed precondition, permission
   * denied, an invalid token — outcome is the error's reason) or a rate-limit
   * hit, about the subject the flow returned. Malformed input and unknown
   * tenants are not recorded. Unknown addresses are recorded with target "" —
   * one write either way, so the answer and its timing reveal nothing. Returns
   * the flow's value, or throws its error.
   */
  run<T>(tenantId: string, meta: RequestMeta, names: SecurityEventNames, flow: () => Promise<SecurityAttempt<T>>, actor?: string): Promise<T>;
}

/** How long one (tenant, event, ip, target) rate-limit hit is remembered: repeats within it are not re-recorded. */
const RATE_LIMIT_EVENT_WINDOW_MS = 60_000;
const RATE_LIMIT_MEMORY = 10_000;

export function createSecurityEvents(audit: AuditLog, now: () => number): SecurityEvents {
  // A refused flood must stay cheap: each instance records one rate-limit event
  // per (tenant, event, ip, target) per minute, not one per refused request.
  const recentRateLimits = new Map<string, number>();
  function firstRateLimitHit(key: string): boolean {
    const at = now();
    const seen = recentRateLimits.get(key);
    if (seen !== undefined && at - seen < RATE_LIMIT_EVENT_WINDOW_MS) return false;
    recentRateLimits.delete(key);
    if (recentRateLimits.size >= RATE_LIMIT_MEMORY) {
      const oldest = recentRateLimits.keys().next();
      if (!oldest.done) recentRateLimits.delete(oldest.value);
    }
    recentRateLimits.set(key, at);
    return true;
  }

  return {
    async run(tenantId, meta, names, flow, actor = "anonymous") {
      const attempt = await flow();
      const subjectTenant = attempt.subject.tenantId ?? tenantId;
      const accountId = attempt.subject.accountId ?? "";
      const record = (action: string, outcome: string) =>
        audit.record({
          tenantId: subjectTenant,
          actor,
          action,
          target: accountId ? `account:${accountId}` : "",
          reason: "",
          ip: meta.ip,
          userAgent: meta.userAgent,
          outcome,
        });
      if (!attempt.ok) {
        const { error } = attempt;
        if (error instanceof DomainError) {
          if (error.kind === "resource_exhausted") {
            if (firstRateLimitHit(JSON.stringify([subjectTenant, names.rateLimited, meta.ip, accountId]))) await record(names.rateLimited, error.reason);
          } else if (isRefusal(error)) {
            await record(`${names.action}_failed`, error.reason);
          }
        }
        throw error;
      }
      await record(names.action, attempt.subject.outcome ?? "success");
      return attempt.value;
    },
  };
}

function isRefusal(error: DomainError): boolean {
  switch (error.kind) {
    case "unauthenticated":
    case "permission_denied":
    case "failed_precondition":
      return true;
    case "invalid_argument":
      // A link or an SMS code refused: a guess worth recording, as a wrong password is.
      return error.reason === "TOKEN_INVALID" || error.reason === "CODE_INVALID";
    default:
      return false;
  }
}
