// A separate process appending to one tenant's audit chain, as another
// instance or cluster worker would: `node test/support/audit-append.ts '<json>'`
// with { mysqlUrl? | sqlitePath?, tenantId, count, tag }. Prints the appended
// sequences as JSON.
import { createAudit } from "../../src/domain/audit.ts";
import { createSqlAuditStore } from "../../src/store/sql/audit-store.ts";
import { openSqlDatabase } from "../../src/store/sql/database.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as { mysqlUrl?: string; sqlitePath?: string; tenantId: string; count: number; tag: string };
const database = openSqlDatabase({ mysqlUrl: options.mysqlUrl, sqlitePath: options.sqlitePath, poolSize: 5 });
try {
  const audit = createAudit(createSqlAuditStore(database), Date.now);
  const events = await Promise.all(
    Array.from({ length: options.count }, (_, i) =>
      audit.record({
        tenantId: options.tenantId,
        actor: "system",
        action: "test.append",
        target: "",
        reason: `${options.tag} #${i}`,
        ip: "",
        userAgent: "",
        outcome: "success",
      }),
    ),
  );
  process.stdout.write(JSON.stringify(events.map((e) => e.sequence)));
} finally {
  await database.close();
}
