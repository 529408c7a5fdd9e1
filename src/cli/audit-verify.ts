// `npm run audit:verify [-- --tenant <id>]`: verifies the audit hash chains of
// the configured database (MYSQL_URL, or the embedded SQLite file) — every
// tenant's chain, or one — reading them in batches, and prints each chain's
// head (sequence and hash: record them elsewhere to detect a rewrite of the
// whole tail later). Exit status: 0 intact, 1 broken (naming the first broken
// sequence of each broken chain), 2 bad usage, 3 the check could not run
// (database unreachable), 78 bad configuration.
import { join } from "node:path";
import { ConfigError, loadConfig } from "../config.ts";
import { createAudit, type AuditBreak } from "../domain/audit.ts";
import { createSqlAuditStore } from "../store/sql/audit-store.ts";
import { openSqlDatabase } from "../store/sql/database.ts";

const PROBLEMS: Record<AuditBreak, string> = {
  hash_mismatch: "the event's fields do not match its hash (changed after it was written)",
  link_mismatch: "the event does not commit to the event before it (an earlier event was replaced)",
  missing: "the event is missing (deleted)",
  head_mismatch: "the chain's recorded head does not match its last event",
};

const argv = process.argv.slice(2);
let tenantId: string | undefined;
if (argv[0] === "--tenant" && argv[1] && argv.length === 2) tenantId = argv[1];
else if (argv.length > 0) {
  process.stderr.write("usage: npm run audit:verify [-- --tenant <tenant id>]\n");
  process.exit(2);
}

let code: number;
try {
  const config = loadConfig();
  const database = openSqlDatabase({ mysqlUrl: config.mysqlUrl, sqlitePath: join(config.dataDir, "identity.sqlite"), poolSize: 2 });
  try {
    const tables = new Set((await database.db.introspection.getTables()).map((t) => t.name));
    if (!tables.has("audit_events") || !tables.has("audit_heads") || !tables.has("audit_checkpoints")) {
      throw new Error("the database has no audit tables yet: run `npm run migrate` (or start the service once)");
    }
    const store = createSqlAuditStore(database);
    const result = await createAudit(store, Date.now).verify(tenantId);
    const out: string[] = [];
    for (let id = tenantId ?? (await store.nextChain("")); id !== undefined; id = tenantId === undefined ? await store.nextChain(id) : undefined) {
      const head = await store.head(id);
      out.push(`chain ${id}: head ${head ? `sequence ${head.sequence} hash ${head.hash}` : "missing"}`);
    }
    for (const b of result.broken) out.push(`BROKEN chain ${b.tenantId}: first broken sequence ${b.sequence}: ${PROBLEMS[b.problem]}`);
    out.push(
      result.intact
        ? `audit trail intact: ${result.checkedCount} events checked`
        : `audit trail BROKEN at sequence ${result.firstBrokenSequence} (tenant ${result.broken[0]?.tenantId}); ${result.checkedCount} events checked`,
    );
    process.stdout.write(`${out.join("\n")}\n`);
    code = result.intact ? 0 : 1;
  } finally {
    await database.close();
  }
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  code = error instanceof ConfigError ? 78 : 3;
}
process.exit(code);
