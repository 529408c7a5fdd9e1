// The AuditStore contract (src/domain/ports/) and the audit domain over it
// (src/domain/audit.ts), on the embedded SQLite store and on MySQL/MariaDB:
// appends from many callers and several processes on one database never fork
// a chain; list filters and keyset pages;
// verification names the first broken link after direct tampering; the
// list queries use the indexes.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import type { UntypedDatabase } from "../../src/store/sql/schema.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEventInput } from "../../src/domain/audit-log.ts";
import { auditHash, createAudit, type Audit } from "../../src/domain/audit.ts";
import { DomainError } from "../../src/domain/errors.ts";
import { AUDIT_GENESIS_HASH, type AuditStore } from "../../src/domain/ports/audit.ts";
import { openSqlDatabase, type SqlDatabase } from "../../src/store/sql/database.ts";
import { createSqlAuditStore } from "../../src/store/sql/audit-store.ts";
import { migrateToLatest } from "../../src/store/sql/migrations.ts";
import { BACKENDS, createMysqlDatabase, type BackendName } from "../support/backends.ts";

/** 2030-01-01T00:00:00Z: past 2^32, so BIGINT columns are really exercised. */
const T0 = Date.UTC(2030, 0, 1);

interface Harness {
  /** Where the database is, for another process. */
  location: { mysqlUrl?: string; sqlitePath?: string };
  /** Opens a connection (SQLite) or pool (MySQL) to the database; the first one migrates it. */
  open(): Promise<SqlDatabase>;
  close(): Promise<void>;
}

async function harness(backend: BackendName): Promise<Harness> {
  const mysql = backend === "mysql" ? await createMysqlDatabase() : undefined;
  const dir = mkdtempSync(join(tmpdir(), "audit-contract-"));
  // A file, not :memory:, so a second connection sees the same database as another process would.
  const location = mysql ? { mysqlUrl: mysql.url } : { sqlitePath: join(dir, "identity.sqlite") };
  const connect = () => openSqlDatabase({ ...location, poolSize: 5 });
  const opened: SqlDatabase[] = [];
  return {
    location,
    async open() {
      const database = connect();
      opened.push(database);
      if (opened.length === 1) await migrateToLatest(database.db);
      return database;
    },
    async close() {
      for (const database of opened) await database.close();
      await mysql?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function input(tenantId: string, overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    tenantId,
    actor: "account:0190a0b0-0000-7000-8000-000000000001",
    action: "user.get",
    target: "account:0190a0b0-0000-7000-8000-000000000002",
    reason: "support ticket 42",
    ip: "203.0.113.7",
    userAgent: "grpcurl/1.9",
    outcome: "success",
    ...overrides,
  };
}

async function expectInvalid(promise: Promise<unknown>, field: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).kind).toBe("invalid_argument");
  expect((error as DomainError).fieldViolations[0]?.field).toBe(field);
}

describe.each(BACKENDS)("the audit store on the %s backend", (backend) => {
  let h: Harness;
  let database: SqlDatabase;
  let raw: UntypedDatabase;
  let store: AuditStore;
  let clock = T0;
  let audit: Audit;
  let tenantSeq = 0;
  const newTenant = () => `t${Date.now().toString(36)}${tenantSeq++}`;

  beforeAll(async () => {
    h = await harness(backend);
    database = await h.open();
    raw = database.db as UntypedDatabase;
    store = createSqlAuditStore(database);
    audit = createAudit(store, () => clock++);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("starts a chain at the genesis hash and links every event to the previous one", async () => {
    const tenant = newTenant();
    expect(await store.head(tenant)).toBeUndefined();
    const first = await audit.record(input(tenant));
    const second = await audit.record(input(tenant, { action: "user.deactivate" }));
    expect(first).toMatchObject({ sequence: 1, prevHash: AUDIT_GENESIS_HASH, tenantId: tenant, action: "user.get" });
    expect(second).toMatchObject({ sequence: 2, prevHash: first.hash, action: "user.deactivate" });
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(auditHash(first)).toBe(first.hash);
    expect(await store.head(tenant)).toEqual({ sequence: 2, hash: second.hash });
    // Stored exactly as hashed, read back the same on this backend.
    const [row] = await store.list({ tenantId: tenant, afterSequence: 0, limit: 1 });
    expect(row).toEqual({ ...first });
    expect(Number(row?.at)).toBeGreaterThan(2 ** 32);
    expect(await audit.verify(tenant)).toEqual({ intact: true, firstBrokenSequence: 0, checkedCount: 2, broken: [] });
  });

  it("keeps one unbroken chain under 50 concurrent appends", async () => {
    const tenant = newTenant();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => audit.record(input(tenant, { reason: `concurrent ${i}` }))));
    expect(results.map((e) => e.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const events = await store.list({ tenantId: tenant, afterSequence: 0, limit: 100 });
    expect(events.map((e) => e.sequence)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (let i = 1; i < events.length; i++) expect(events[i]?.prevHash).toBe(events[i - 1]?.hash);
    expect(await audit.verify(tenant)).toMatchObject({ intact: true, checkedCount: 50 });
  });

  it("keeps one unbroken chain when other processes append at the same time, from the chain's first event", async () => {
    const tenant = newTenant();
    // Two other processes (as instances or cluster workers would be) and this one, all at once.
    const others = ["p1", "p2"].map((tag) => appendFromProcess({ ...h.location, tenantId: tenant, count: 25, tag }));
    const here = Promise.all(Array.from({ length: 25 }, (_, i) => audit.record(input(tenant, { reason: `here #${i}` }))));
    const sequences = [...(await Promise.all(others)).flat(), ...(await here).map((e) => e.sequence)];
    expect(sequences.sort((a, b) => a - b)).toEqual(Array.from({ length: 75 }, (_, i) => i + 1));
    const events = await store.list({ tenantId: tenant, afterSequence: 0, limit: 100 });
    expect(new Set(events.map((e) => e.reason.split(" ")[0]))).toEqual(new Set(["p1", "p2", "here"]));
    expect(await audit.verify(tenant)).toMatchObject({ intact: true, checkedCount: 75, firstBrokenSequence: 0 });
  }, 60_000);

  it("writes concurrent appends of one tenant together: a few transactions for 60 events, not one lock wait each", async () => {
    // Counts the transactions that inserted events (one multi-row insert each) through this store.
    let inserts = 0;
    const counted = database.db.withPlugin({
      transformQuery(args) {
        if (args.node.kind === "InsertQueryNode" && JSON.stringify(args.node.into).includes("audit_events")) inserts++;
        return args.node;
      },
      transformResult: async (args) => args.result,
    });
    const grouped = createAudit(createSqlAuditStore({ ...database, db: counted }), () => clock++);
    const tenant = newTenant();
    await grouped.record(input(tenant, { reason: "first" }));
    inserts = 0;
    // 60 appends at once, as 60 sign-ins of one tenant finishing together: they overlap in
    // time (all in flight at once) and share one transaction, or two when one was already open.
    const started: number[] = [];
    const settled: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        started.push(performance.now());
        const event = await grouped.record(input(tenant, { reason: `signin ${i}` }));
        settled.push(performance.now());
        return event;
      }),
    );
    expect(inserts).toBeLessThanOrEqual(2);
    expect(Math.max(...started)).toBeLessThan(Math.min(...settled));
    expect(results.map((e) => e.sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 2));
    expect(await grouped.verify(tenant)).toMatchObject({ intact: true, checkedCount: 61 });
  });

  it("fails only the append whose event cannot be built, and the chain stays whole around it", async () => {
    const tenant = newTenant();
    await audit.record(input(tenant));
    const answers = await Promise.allSettled(
      Array.from({ length: 9 }, (_, i) =>
        i === 4
          ? store.append(tenant, () => {
              throw new Error("cannot build this one");
            })
          : i === 6
            ? store.append(tenant, (head) => ({ ...input(tenant), sequence: head.sequence + 2, at: clock++, prevHash: head.hash, hash: "0".repeat(64) }))
            : audit.record(input(tenant, { reason: `ok ${i}` })),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    expect(String((answers[4] as PromiseRejectedResult).reason)).toContain("cannot build this one");
    expect(String((answers[6] as PromiseRejectedResult).reason)).toContain("does not continue the chain");
    expect(await store.head(tenant)).toMatchObject({ sequence: 8 });
    expect(await audit.verify(tenant)).toMatchObject({ intact: true, checkedCount: 8 });
    // And the next append continues the chain.
    expect((await audit.record(input(tenant))).sequence).toBe(9);
  });

  it("keeps chains of different tenants apart", async () => {
    const a = newTenant();
    const b = newTenant();
    await Promise.all([audit.record(input(a)), audit.record(input(b)), audit.record(input(a))]);
    expect((await store.head(a))?.sequence).toBe(2);
    expect((await store.head(b))?.sequence).toBe(1);
    const listed = await audit.list({ tenantId: b, pageSize: 10, pageToken: "" });
    expect(listed.events.map((e) => e.tenantId)).toEqual([b]);
    // nextChain walks every chain in tenant order.
    const seen: string[] = [];
    for (let id = await store.nextChain(""); id !== undefined; id = await store.nextChain(id)) seen.push(id);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining([a, b]));
  });

  it("filters by actor, target, action and time, and pages with opaque tokens", async () => {
    const tenant = newTenant();
    const start = clock;
    for (let i = 0; i < 12; i++) {
      await audit.record(
        input(tenant, {
          actor: i % 3 === 0 ? "api_key:k1" : "account:admin",
          target: i % 2 === 0 ? "account:even" : "account:odd",
          action: i % 4 === 0 ? "user.delete" : "user.get",
        }),
      );
    }
    const all = (await audit.list({ tenantId: tenant, pageSize: 100, pageToken: "" })).events;
    expect(all.map((e) => e.sequence)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));

    const byActor = await audit.list({ tenantId: tenant, actor: "api_key:k1", pageSize: 0, pageToken: "" });
    expect(byActor.events.map((e) => e.sequence)).toEqual([1, 4, 7, 10]);
    const byTarget = await audit.list({ tenantId: tenant, target: "account:odd", pageSize: 50, pageToken: "" });
    expect(byTarget.events.map((e) => e.sequence)).toEqual([2, 4, 6, 8, 10, 12]);
    const byAction = await audit.list({ tenantId: tenant, action: "user.delete", target: "account:even", pageSize: 50, pageToken: "" });
    expect(byAction.events.map((e) => e.sequence)).toEqual([1, 5, 9]);
    const third = all[2]!;
    const eighth = all[7]!;
    const byTime = await audit.list({ tenantId: tenant, after: third.at, before: eighth.at, pageSize: 50, pageToken: "" });
    expect(byTime.events.map((e) => e.sequence)).toEqual([3, 4, 5, 6, 7]);
    expect(third.at).toBeGreaterThanOrEqual(start);

    // Pages of 5 over the target filter: each event exactly once, then an empty token.
    const pages: number[][] = [];
    let token = "";
    do {
      const page = await audit.list({ tenantId: tenant, target: "account:odd", pageSize: 5, pageToken: token });
      pages.push(page.events.map((e) => e.sequence));
      token = page.nextPageToken;
      if (pages.length > 5) throw new Error("pagination does not end");
    } while (token !== "");
    expect(pages).toEqual([[2, 4, 6, 8, 10], [12]]);
    // An exact last page says so.
    const exact = await audit.list({ tenantId: tenant, actor: "api_key:k1", pageSize: 4, pageToken: "" });
    expect(exact.nextPageToken).toBe("");
  });

  it("refuses malformed, forged and foreign page tokens, and bad page sizes and ranges, naming the field", async () => {
    const tenant = newTenant();
    for (let i = 0; i < 3; i++) await audit.record(input(tenant));
    const first = await audit.list({ tenantId: tenant, pageSize: 1, pageToken: "" });
    expect(first.nextPageToken).not.toBe("");
    expect(first.nextPageToken).toMatch(/^[A-Za-z0-9_-]+$/);
    const next = await audit.list({ tenantId: tenant, pageSize: 1, pageToken: first.nextPageToken });
    expect(next.events[0]?.sequence).toBe(2);

    for (const bad of [
      "x",
      "!!!",
      "bm90IGEgdG9rZW4",
      Buffer.from("a1.0.AAAAAAAAAAAA").toString("base64url"),
      Buffer.from("a1.-3.AAAAAAAAAAAA").toString("base64url"),
      `${first.nextPageToken}=`,
      "A".repeat(200),
    ]) {
      await expectInvalid(audit.list({ tenantId: tenant, pageSize: 1, pageToken: bad }), "page_token");
    }
    // A token is tied to its tenant and filters.
    await expectInvalid(audit.list({ tenantId: newTenant(), pageSize: 1, pageToken: first.nextPageToken }), "page_token");
    await expectInvalid(audit.list({ tenantId: tenant, actor: "system", pageSize: 1, pageToken: first.nextPageToken }), "page_token");
    await expectInvalid(audit.list({ tenantId: tenant, pageSize: -1, pageToken: "" }), "page_size");
    await expectInvalid(audit.list({ tenantId: tenant, after: T0 + 10, before: T0 + 10, pageSize: 1, pageToken: "" }), "before");
    // Oversized pages are cut to the maximum.
    const big = await audit.list({ tenantId: tenant, pageSize: 100_000, pageToken: "" });
    expect(big.events).toHaveLength(3);
  });

  it("never stores an email address as actor or target, and cuts long free text to fit", async () => {
    const tenant = newTenant();
    await expect(audit.record(input(tenant, { target: "person@example.com" }))).rejects.toThrow(/not an email address/);
    await expect(audit.record(input(tenant, { actor: "person@example.com" }))).rejects.toThrow(/not an email address/);
    expect(await store.head(tenant)).toBeUndefined();
    const long = await audit.record(input(tenant, { reason: "é".repeat(5000), userAgent: `${"🙂".repeat(600)}\uD800`, ip: "x".repeat(100) }));
    expect(Array.from(long.reason)).toHaveLength(1000);
    expect(Array.from(long.userAgent)).toHaveLength(512);
    const [stored] = await store.list({ tenantId: tenant, afterSequence: 0, limit: 1 });
    expect(stored?.reason).toBe(long.reason);
    expect(stored?.userAgent).toBe(long.userAgent);
    expect(await audit.verify(tenant)).toMatchObject({ intact: true, checkedCount: 1 });
  });

  describe("verification after tampering", () => {
    async function chainOf(length: number) {
      const tenant = newTenant();
      for (let i = 1; i <= length; i++) await audit.record(input(tenant, { reason: `event ${i}` }));
      return tenant;
    }

    it("names an event whose field was changed", async () => {
      const tenant = await chainOf(8);
      await sql`UPDATE audit_events SET outcome = ${"PERMISSION_DENIED"} WHERE tenant_id = ${tenant} AND sequence = 5`.execute(raw);
      expect(await audit.verify(tenant)).toEqual({
        intact: false,
        firstBrokenSequence: 5,
        checkedCount: 4,
        broken: [{ tenantId: tenant, sequence: 5, problem: "hash_mismatch" }],
      });
    });

    it("names the next event when a changed event's hash was recomputed too", async () => {
      const tenant = await chainOf(6);
      const [e3] = await store.list({ tenantId: tenant, afterSequence: 2, limit: 1 });
      const forged = { ...e3!, reason: "nothing to see" };
      await sql`UPDATE audit_events SET reason = ${forged.reason}, hash = ${auditHash(forged)} WHERE tenant_id = ${tenant} AND sequence = 3`.execute(raw);
      expect(await audit.verify(tenant)).toMatchObject({ intact: false, firstBrokenSequence: 4, broken: [{ problem: "link_mismatch" }] });
    });

    it("names a deleted event in the middle", async () => {
      const tenant = await chainOf(7);
      await sql`DELETE FROM audit_events WHERE tenant_id = ${tenant} AND sequence = 4`.execute(raw);
      expect(await audit.verify(tenant)).toMatchObject({ intact: false, firstBrokenSequence: 4, checkedCount: 3, broken: [{ problem: "missing" }] });
    });

    it("names a cut tail and a wound-back or missing head", async () => {
      const cut = await chainOf(5);
      await sql`DELETE FROM audit_events WHERE tenant_id = ${cut} AND sequence >= 4`.execute(raw);
      expect(await audit.verify(cut)).toMatchObject({ intact: false, firstBrokenSequence: 4, checkedCount: 3, broken: [{ problem: "missing" }] });

      const woundBack = await chainOf(5);
      await sql`UPDATE audit_heads SET sequence = 3 WHERE tenant_id = ${woundBack}`.execute(raw);
      expect(await audit.verify(woundBack)).toMatchObject({ intact: false, broken: [{ problem: "head_mismatch" }] });

      const headless = await chainOf(2);
      await sql`DELETE FROM audit_heads WHERE tenant_id = ${headless}`.execute(raw);
      expect(await audit.verify(headless)).toMatchObject({ intact: false, firstBrokenSequence: 2, broken: [{ problem: "head_mismatch" }] });
    });

    it("checks every chain when no tenant is named, in batches", async () => {
      const intactTenant = await chainOf(3);
      const long = await chainOf(1203); // more than two verification batches
      expect(await audit.verify(long)).toMatchObject({ intact: true, checkedCount: 1203 });
      await sql`UPDATE audit_events SET reason = ${"edited"} WHERE tenant_id = ${long} AND sequence = 1100`.execute(raw);
      const everything = await audit.verify();
      expect(everything.intact).toBe(false);
      expect(everything.broken).toEqual(expect.arrayContaining([{ tenantId: long, sequence: 1100, problem: "hash_mismatch" }]));
      expect(everything.broken.some((b) => b.tenantId === intactTenant)).toBe(false);
      expect(everything.checkedCount).toBeGreaterThan(1100);
    }, 120_000);
  });

  it("answers list queries from the indexes, in sequence order without sorting", async () => {
    const tenant = newTenant();
    const rows = Array.from({ length: 2000 }, (_, i) => ({
      tenant_id: tenant,
      sequence: i + 1,
      at: T0 + i,
      actor: `account:a${i % 50}`,
      action: `act.${i % 20}`,
      target: `account:t${i % 100}`,
      reason: "",
      ip: "",
      user_agent: "",
      outcome: "success",
      prev_hash: "",
      hash: "",
    }));
    for (let i = 0; i < rows.length; i += 500)
      await raw
        .insertInto("audit_events")
        .values(rows.slice(i, i + 500))
        .execute();
    if (backend === "mysql") await sql`ANALYZE TABLE audit_events`.execute(raw);
    const cases: Array<{ column: "actor" | "target" | "action"; value: string; index: string }> = [
      { column: "actor", value: "account:a7", index: "audit_events_actor" },
      { column: "target", value: "account:t7", index: "audit_events_target" },
      { column: "action", value: "act.7", index: "audit_events_action" },
    ];
    for (const c of cases) {
      const query = raw
        .selectFrom("audit_events")
        .selectAll()
        .where("tenant_id", "=", tenant)
        .where(c.column, "=", c.value)
        .where("sequence", ">", 10)
        .orderBy("sequence")
        .limit(51);
      const plan = await explain(raw, backend, query.compile());
      expect(plan, `${c.column}: ${plan}`).toContain(c.index);
      expect(plan).not.toMatch(/filesort|TEMP B-TREE|SCAN audit_events\b(?! USING)/i);
    }
    const unfiltered = raw.selectFrom("audit_events").selectAll().where("tenant_id", "=", tenant).where("sequence", ">", 10).orderBy("sequence").limit(51);
    const plan = await explain(raw, backend, unfiltered.compile());
    expect(plan).toMatch(/PRIMARY|sqlite_autoindex_audit_events|audit_events_pk/i);
    expect(plan).not.toMatch(/filesort|TEMP B-TREE/i);
  });
});

function appendFromProcess(options: Record<string, unknown>): Promise<number[]> {
  const script = fileURLToPath(new URL("../support/audit-append.ts", import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, JSON.stringify(options)], { timeout: 50_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as number[]);
    });
  });
}

async function explain(raw: UntypedDatabase, backend: BackendName, compiled: { sql: string; parameters: readonly unknown[] }): Promise<string> {
  const prefix = backend === "mysql" ? "EXPLAIN " : "EXPLAIN QUERY PLAN ";
  const result = await raw.executeQuery({ ...compiled, sql: prefix + compiled.sql, query: compiled as never, queryId: { queryId: "explain" } } as never);
  return JSON.stringify(result.rows);
}
