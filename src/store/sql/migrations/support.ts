// Shared by migrations. MySQL 8 has no CREATE INDEX IF NOT EXISTS (MariaDB and
// SQLite do), so a re-run after a half-applied migration (DDL is not
// transactional on MySQL) treats "index already exists" as done instead.
export async function ignoreExistingIndex(creation: Promise<unknown>): Promise<void> {
  try {
    await creation;
  } catch (error) {
    const e = error as { errno?: number; message?: string };
    if (e.errno === 1061 || /already exists/i.test(e.message ?? "")) return; // ER_DUP_KEYNAME / SQLite
    throw error;
  }
}
