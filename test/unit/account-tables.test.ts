// Every table of the migrated main database is classified: either it holds rows
// about one account (ACCOUNT_TABLES: erasure, the unverified purge and the ledger
// replay delete from it) or it does not (SHARED_TABLES). A new migration adding
// a table fails here until it is put in one list — so erasure never misses it.
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACCOUNT_TABLES, SHARED_TABLES } from "../../src/store/sql/account-tables.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

describe("per-account tables", () => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable("embedded");
  });
  afterAll(async () => {
    await h?.close();
  });

  const tables = async (db: DurableHarness["raw"]) =>
    (await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`.execute(db)).rows.map((r) => r.name).sort();

  it("every table of the main database and the key store is either per-account or shared", async () => {
    const classified = new Set<string>([...ACCOUNT_TABLES.map((t) => t.table), ...SHARED_TABLES]);
    const unclassified = [...(await tables(h.raw)), ...(await tables(h.rawKeys))].filter((name) => !classified.has(name));
    expect(unclassified, "add these tables to ACCOUNT_TABLES or SHARED_TABLES in src/store/sql/account-tables.ts").toEqual([]);
  });

  it("every per-account table exists, and its account column leads an index (erasure and replay never scan)", async () => {
    const existing = await tables(h.raw);
    for (const { table, column } of ACCOUNT_TABLES) {
      expect(existing, table).toContain(table);
      const indexes = (await sql<{ name: string }>`SELECT name FROM pragma_index_list(${table})`.execute(h.raw)).rows;
      const leading = await Promise.all(
        indexes.map(async (i) => (await sql<{ name: string }>`SELECT name FROM pragma_index_info(${i.name}) WHERE seqno = 0`.execute(h.raw)).rows[0]?.name),
      );
      expect(leading, `${table}.${column}`).toContain(column);
    }
  });
});
