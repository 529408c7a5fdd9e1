// The data export (GDPR art. 15 and 20): every record about one person, section
// by section, in parts of at most EXPORT_PART_RECORDS so nothing is held whole in
// memory. The person and an admin read this one exporter; nothing about anyone
// else leaves it. Sections and the redaction rules: docs/privacy.md#data-export.
import type { Keyring } from "../crypto/keyring.ts";
import { identityView, openAccount } from "./accounts.ts";
import { roleName } from "./authorization.ts";
import type { Consent, Consents } from "./consents.ts";
import { DomainError } from "./errors.ts";
import type { AccountReader } from "./ports/accounts.ts";
import type { AuditReader, StoredAuditEvent } from "./ports/audit.ts";
import type { EventStore } from "./ports/events.ts";
import type { OutboxHistory } from "./ports/outbox.ts";
import type { Sessions } from "./sessions.ts";
import { DEFAULT_TENANT_ID } from "./tenants.ts";
import type { SecondFactors } from "./second-factors.ts";
import { AccountState, AssuranceLevel, IdentityKind, SecondFactorKind, SUBSCRIPTION_STATUS_NAMES } from "./types.ts";

export const EXPORT_FORMAT = "identity.export.v1";
/** Most records in one part. */
export const EXPORT_PART_RECORDS = 500;

export const EXPORT_SECTIONS = [
  "account",
  "identities",
  "sessions",
  "second_factors",
  "consents",
  "subscription",
  "messages",
  "events",
  "audit_events_about_me",
  "audit_events_by_me",
] as const;
export type ExportSection = (typeof EXPORT_SECTIONS)[number] | "summary";

export interface ExportPart {
  section: ExportSection;
  /** A JSON object (see the module comment). */
  json: string;
}

export interface DataExport {
  /**
   * The account's export, part by part. The account is read first: not_found
   * (ACCOUNT_NOT_FOUND) before any part when it is not in the tenant.
   */
  parts(tenantId: string, accountId: string): AsyncGenerator<ExportPart>;
}

export interface DataExportDeps {
  accounts: Pick<AccountReader, "getAccount" | "listIdentities">;
  keyring: Keyring;
  sessions: Pick<Sessions, "list">;
  /** Second factors, listed without their secrets (recovery codes only counted). */
  secondFactors: Pick<SecondFactors, "list">;
  consents: Pick<Consents, "current" | "historyPages">;
  outbox: Pick<OutboxHistory, "listForAccount">;
  /** Domain events about the person (what webhooks and the event stream carry). */
  events: Pick<EventStore, "listForAccount">;
  audit: Pick<AuditReader, "list" | "nextChain">;
  now: () => number;
}

type JsonRecord = Record<string, unknown>;

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
const nameOf = (values: Record<string, number>, value: number): string => Object.keys(values).find((k) => values[k] === value) ?? String(value);

/** Splits an in-memory list (already small: identities, sessions) into batches of a part's size. */
async function* batchesOf<T>(items: readonly T[]): AsyncGenerator<T[]> {
  for (let i = 0; i < items.length; i += EXPORT_PART_RECORDS) yield items.slice(i, i + EXPORT_PART_RECORDS);
}

function consentRecord(c: Consent): JsonRecord {
  return { purpose: c.purpose, version: c.version, granted: c.granted, recordTime: iso(c.recordedAt), client: c.client };
}

/** An audit event as the person may see it (see the module comment). */
export function auditEventForExport(event: StoredAuditEvent, accountId: string): JsonRecord {
  const me = `account:${accountId}`;
  const party = (name: string) => (name.startsWith("account:") && name !== me ? "account" : name);
  const theirs = event.actor === me || (event.actor === "anonymous" && event.target === me && event.outcome === "success");
  const aboutSomeoneElse = event.target.startsWith("account:") && event.target !== me;
  return {
    tenantId: event.tenantId,
    sequence: event.sequence,
    eventTime: iso(event.at),
    actor: party(event.actor),
    action: event.action,
    target: party(event.target),
    reason: aboutSomeoneElse ? "" : event.reason,
    ipAddress: theirs ? event.ip : "",
    userAgent: theirs ? event.userAgent : "",
    outcome: event.outcome,
  };
}

/**
 * A store's rows in batches of a part's size, by keyset: `fetch` reads the batch
 * after a cursor (none for the first), `cursorOf` makes the cursor of a batch's
 * last row. Stops at the first short batch.
 */
async function* keysetBatches<T, C>(fetch: (after: C | undefined) => Promise<T[]>, cursorOf: (last: T) => C): AsyncGenerator<T[]> {
  let after: C | undefined;
  for (;;) {
    const batch = await fetch(after);
    if (batch.length > 0) yield batch;
    const last = batch[batch.length - 1];
    if (last === undefined || batch.length < EXPORT_PART_RECORDS) return;
    after = cursorOf(last);
  }
}

export function createDataExport(deps: DataExportDeps): DataExport {
  /** One chain's events matching the filter, by ascending sequence. */
  const auditBatches = (tenantId: string, filter: { actor: string } | { target: string }) =>
    keysetBatches(
      (afterSequence: number | undefined) => deps.audit.list({ tenantId, ...filter, afterSequence: afterSequence ?? 0, limit: EXPORT_PART_RECORDS }),
      (last) => last.sequence,
    );

  const outboxBatches = (tenantId: string, accountId: string) =>
    keysetBatches(
      (afterId: string | undefined) =>
        deps.outbox.listForAccount({ tenantId, accountId, limit: EXPORT_PART_RECORDS, ...(afterId !== undefined ? { afterId } : {}) }),
      (last) => last.id,
    );

  const eventBatches = (tenantId: string, accountId: string) =>
    keysetBatches(
      (afterId: string | undefined) =>
        deps.events.listForAccount({ tenantId, accountId, limit: EXPORT_PART_RECORDS, ...(afterId !== undefined ? { afterId } : {}) }),
      (last) => last.id,
    );

  /** The tenants whose chains may hold the person's own actions. */
  async function* actingTenants(tenantId: string): AsyncGenerator<string> {
    if (tenantId !== DEFAULT_TENANT_ID) {
      yield tenantId;
      return;
    }
    for (let id = await deps.audit.nextChain(""); id !== undefined; id = await deps.audit.nextChain(id)) yield id;
  }

  return {
    async *parts(tenantId, accountId) {
      const found = await deps.accounts.getAccount(tenantId, accountId);
      if (!found) throw new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");
      const { account, dataKey } = openAccount(deps.keyring, found.account, found.wrappedKey);
      const exportTime = iso(deps.now());
      const counts: Array<{ section: ExportSection; parts: number; records: number }> = [];

      const part = (section: ExportSection, number: number, records: JsonRecord[], extra: JsonRecord = {}): ExportPart => ({
        section,
        json: JSON.stringify({ format: EXPORT_FORMAT, accountId, section, part: number, exportTime, ...extra, records }),
      });

      /** A section's parts, one per batch; an empty section is one part with no records. */
      async function* section<T>(name: ExportSection, batches: AsyncIterable<T[]>, toRecord: (item: T) => JsonRecord, firstExtra?: () => Promise<JsonRecord>) {
        let number = 0;
        let records = 0;
        const extra = async () => (number === 0 && firstExtra ? firstExtra() : {});
        for await (const batch of batches) {
          yield part(name, number + 1, batch.map(toRecord), await extra());
          number++;
          records += batch.length;
        }
        if (number === 0) {
          yield part(name, 1, [], await extra());
          number = 1;
        }
        counts.push({ section: name, parts: number, records });
      }

      const { profile } = account;
      yield* section("account", batchesOf([account]), (a) => ({
        id: a.id,
        tenantId: a.tenantId,
        role: roleName(a.role),
        state: nameOf(AccountState, a.state),
        locale: a.locale,
        email: profile.email,
        emailVerified: a.emailVerified,
        displayName: profile.displayName,
        pronouns: profile.pronouns,
        customAttributes: profile.customAttributes,
        pushTokens: profile.pushTokens.map((t) => ({ deviceId: t.deviceId, platform: t.platform, token: t.token, createTime: iso(t.createdAt) })),
        passwordSet: found.account.passwordHash !== null,
        createTime: iso(a.createdAt),
        updateTime: iso(a.updatedAt),
      }));

      yield* section("identities", batchesOf((await deps.accounts.listIdentities(accountId)).map((i) => identityView(dataKey, i))), (i) => ({
        id: i.id,
        kind: nameOf(IdentityKind, i.kind),
        value: i.value,
        verified: i.verifiedAt !== null,
        verifyTime: iso(i.verifiedAt),
        createTime: iso(i.createdAt),
        issuer: i.issuer,
        profile: i.profile,
      }));

      yield* section("sessions", batchesOf(await deps.sessions.list(accountId)), ({ session: s, client }) => ({
        id: s.sessionId,
        userAgent: client.userAgent,
        ipAddress: client.ip,
        assuranceLevel: nameOf(AssuranceLevel, s.assurance),
        createTime: iso(s.createdAt),
        lastSeenTime: iso(s.lastSeenAt),
        expireTime: iso(s.expiresAt),
        absoluteExpireTime: iso(s.absoluteExpiresAt),
        authenticationMethods: s.methods.map((m) => ({ method: m.method, identityId: m.identityId, completeTime: iso(m.at) })),
      }));

      const factors = await deps.secondFactors.list(accountId);
      yield* section(
        "second_factors",
        batchesOf(factors.factors),
        (f) => ({ id: f.id, kind: nameOf(SecondFactorKind, f.kind), createTime: iso(f.createdAt), lastUseTime: iso(f.lastUsedAt) }),
        async () => ({ recoveryCodesRemaining: factors.recoveryCodesRemaining }),
      );

      yield* section("consents", deps.consents.historyPages(tenantId, accountId, EXPORT_PART_RECORDS), consentRecord, async () => ({
        current: (await deps.consents.current(tenantId, accountId)).map(consentRecord),
      }));

      yield* section("subscription", batchesOf([account]), (a) => ({
        plan: a.plan,
        status: SUBSCRIPTION_STATUS_NAMES[a.planStatus],
        renews: a.planRenews,
        expireTime: iso(a.planExpiresAt),
      }));

      yield* section("messages", outboxBatches(tenantId, accountId), (m) => ({
        id: m.id,
        kind: m.kind,
        status: m.status,
        attempts: m.attempts,
        createTime: iso(m.createdAt),
        sentTime: iso(m.sentAt),
      }));

      yield* section("events", eventBatches(tenantId, accountId), (e) => ({ id: e.id, type: e.type, eventTime: iso(e.createdAt), data: e.data }));

      const toExport = (e: StoredAuditEvent) => auditEventForExport(e, accountId);
      yield* section("audit_events_about_me", auditBatches(tenantId, { target: `account:${accountId}` }), toExport);
      yield* section(
        "audit_events_by_me",
        (async function* () {
          for await (const chain of actingTenants(tenantId)) yield* auditBatches(chain, { actor: `account:${accountId}` });
        })(),
        toExport,
      );

      yield part(
        "summary",
        1,
        counts.map((c) => ({ ...c })),
        { complete: true },
      );
    },
  };
}
