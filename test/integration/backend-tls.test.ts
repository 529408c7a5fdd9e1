// TLS to the backends (the public port's TLS: test/integration/transport.test.ts).
// - Redis: a TLS endpoint (an in-process TLS terminator in front of the local
//   Redis, with a generated certificate) is reached with rediss:// and
//   REDIS_TLS_CA_FILE; without the CA the certificate is refused; plaintext to
//   the TLS port does not work.
// - MySQL: with MYSQL_TLS_CA_FILE the client insists on TLS: against the local
//   server, which has TLS disabled, it refuses to connect instead of falling back
//   to plaintext (a server with TLS would be verified against the CA).
// - The configuration checks the variables.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:tls";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { openSqlDatabase } from "../../src/store/sql/database.ts";
import { createRedisStores } from "../../src/store/redis/stores.ts";
import { selfSignedCertificate } from "../support/tls.ts";
import { BACKENDS, MYSQL_ADMIN_URL, REDIS_URL, redisPrefix } from "../support/backends.ts";

describe.runIf(BACKENDS.includes("mysql"))("TLS to the backends", () => {
  let dir: string;
  let ca: string;
  let caFile: string;
  let terminator: Server;
  let tlsPort: number;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "backend-tls-"));
    const { key, cert } = await selfSignedCertificate(dir);
    ca = readFileSync(cert, "utf8");
    caFile = cert;
    const redis = new URL(REDIS_URL);
    // TLS in front of the local Redis, as a managed Redis with TLS would be.
    terminator = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (client) => {
      const upstream = connect(Number(redis.port || 6379), redis.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => terminator.listen(0, "127.0.0.1", resolve));
    tlsPort = (terminator.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => terminator?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it("Redis over rediss:// with REDIS_TLS_CA_FILE's CA works: sessions, tokens and pub/sub", async () => {
    const stores = createRedisStores(`rediss://127.0.0.1:${tlsPort}`, { now: Date.now, keyPrefix: redisPrefix(), tlsCa: ca });
    try {
      expect(await stores.ping()).toBe(true);
      const heard: string[][] = [];
      await stores.invalidation.subscribe({
        invalidate: (messages) => heard.push(messages.flatMap((m) => (m.kind === "session" ? m.tokenHashes : []))),
        subscribed: () => {},
      });
      await stores.tokens.put("h1", { purpose: "verify_email", tenantId: "t", accountId: "a", identityId: "i", expiresAt: Date.now() + 60_000 }, 60_000);
      expect((await stores.tokens.take("h1"))?.accountId).toBe("a");
      await stores.invalidation.publish([{ kind: "session", tokenHashes: ["x"] }]);
      for (let i = 0; i < 50 && !heard.some((h) => h.includes("x")); i++) await new Promise((r) => setTimeout(r, 20));
      expect(heard.some((h) => h.includes("x"))).toBe(true);
    } finally {
      await stores.close();
    }
  });

  it("Redis over TLS refuses a certificate it cannot verify, and plaintext to the TLS port gets nowhere", async () => {
    const unverified = createRedisStores(`rediss://127.0.0.1:${tlsPort}`, { now: Date.now, keyPrefix: redisPrefix() });
    const plaintext = createRedisStores(`redis://127.0.0.1:${tlsPort}`, { now: Date.now, keyPrefix: redisPrefix() });
    try {
      expect(await unverified.ping()).toBe(false);
      expect(await plaintext.ping()).toBe(false);
    } finally {
      await unverified.close();
      await plaintext.close();
    }
  });

  it("MySQL with MYSQL_TLS_CA_FILE insists on TLS: no plaintext fallback against a server without it", async () => {
    const plain = openSqlDatabase({ mysqlUrl: MYSQL_ADMIN_URL });
    const tls = openSqlDatabase({ mysqlUrl: MYSQL_ADMIN_URL, tlsCa: ca });
    try {
      expect(await plain.ping()).toBe(true);
      expect(await tls.ping()).toBe(false);
    } finally {
      await plain.close();
      await tls.close();
    }
  });

  it("the configuration names the CA files and the key store's database, and checks them", () => {
    const base = {
      MYSQL_URL: "mysql://u@db/identity",
      REDIS_URL: "rediss://cache:6380",
      KEY_ENCRYPTION_KEYS: randomBytes(32).toString("base64"),
      BLIND_INDEX_KEY: randomBytes(32).toString("base64"),
    };
    const config = loadConfig({ ...base, MYSQL_TLS_CA_FILE: caFile, REDIS_TLS_CA_FILE: caFile, KEYSTORE_MYSQL_URL: "mysql://u@keys/identity_keys" });
    expect(config).toMatchObject({
      mysqlTlsCaFile: caFile,
      redisTlsCaFile: caFile,
      keystoreMysqlUrl: "mysql://u@keys/identity_keys",
      redisUrl: "rediss://cache:6380",
    });
    const refused = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error("accepted");
    };
    expect(refused({ ...base, MYSQL_TLS_CA_FILE: join(dir, "missing.pem") })).toContain("MYSQL_TLS_CA_FILE names a file that does not exist");
    expect(refused({ ...base, REDIS_TLS_CA_FILE: join(dir, "missing.pem") })).toContain("REDIS_TLS_CA_FILE");
    expect(refused({ ...base, KEYSTORE_MYSQL_URL: base.MYSQL_URL })).toContain("KEYSTORE_MYSQL_URL must name another database");
    expect(refused({ ...base, KEYSTORE_MYSQL_URL: "postgres://x/y" })).toContain("KEYSTORE_MYSQL_URL must use");
    expect(refused({ KEYSTORE_MYSQL_URL: "mysql://u@keys/k" })).toContain("KEYSTORE_MYSQL_URL needs MYSQL_URL");
    expect(loadConfig({}).keystoreMysqlUrl).toBeUndefined();
  });
});
