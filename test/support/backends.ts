// The backends a suite runs against. MySQL/MariaDB and Redis come from
// TEST_MYSQL_URL / TEST_REDIS_URL (defaults: the local servers). In CI they are
// mandatory: an unreachable server fails the run instead of skipping it.
import { randomBytes } from "node:crypto";
import { createConnection } from "mysql2/promise";
import { Redis } from "ioredis";

export const MYSQL_ADMIN_URL = process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

export type BackendName = "embedded" | "mysql";

async function reachable(): Promise<boolean> {
  try {
    const connection = await createConnection({ uri: MYSQL_ADMIN_URL, connectTimeout: 2000 });
    await connection.end();
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await redis.connect();
    await redis.quit();
    return true;
  } catch {
    return false;
  }
}

const serversUp = await reachable();
if (!serversUp && !IN_CI) {
  process.stderr.write("MySQL/Redis unreachable: their suites are skipped (they are mandatory when CI=true)\n");
}

/** Backends to run contract and integration suites against. */
export const BACKENDS: BackendName[] = serversUp || IN_CI ? ["embedded", "mysql"] : ["embedded"];

/** A fresh, empty MySQL database for one suite; drop() removes it. */
export async function createMysqlDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `identity_test_${randomBytes(6).toString("hex")}`;
  const admin = await createConnection({ uri: MYSQL_ADMIN_URL });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await admin.end();
  const url = new URL(MYSQL_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const connection = await createConnection({ uri: MYSQL_ADMIN_URL });
      await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await connection.end();
    },
  };
}

/** A key prefix no other suite or run uses, so suites share one Redis safely. */
export function redisPrefix(): string {
  return `test-${randomBytes(6).toString("hex")}:`;
}
