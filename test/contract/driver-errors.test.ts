// The error contract every port shares (src/domain/ports/errors.ts), on every
// backend: the adapters translate their drivers' errors themselves — a unique
// violation becomes already_exists, an unreachable or aborting backend
// becomes unavailable — so nothing above src/store/ reads a driver error.
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.ts";
import { ALREADY_EXISTS, BACKEND_UNAVAILABLE } from "../../src/domain/ports/errors.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { translateRedisError } from "../../src/store/redis/errors.ts";
import { createRedisStores } from "../../src/store/redis/stores.ts";
import { openSqlDatabase } from "../../src/store/sql/database.ts";
import { translateSqlError } from "../../src/store/sql/errors.ts";
import { createSqlStores } from "../../src/store/sql/stores.ts";
import { translatingErrors } from "../../src/store/translate-errors.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const conflict = { kind: "already_exists", reason: ALREADY_EXISTS };
const unavailable = { kind: "unavailable", reason: BACKEND_UNAVAILABLE };

/** A port on 127.0.0.1 where nothing listens (bound, then closed). */
async function closedPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.each(BACKENDS)("driver errors on the %s backend", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("a unique violation is the domain's conflict (already_exists), with the driver error kept only as the cause", async () => {
    const secretHash = randomBytes(32).toString("hex");
    const key = { id: randomUUID(), tenantId: "t-dup", name: "k", permissions: [], createdAt: T0, revokedAt: null, createdBy: "system" };
    await h.stores.apiKeys.create(key, secretHash);
    const error = await h.stores.apiKeys.create({ ...key, id: randomUUID() }, secretHash).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject(conflict);
    expect((error as DomainError).message).toBe("already exists"); // no driver text, no values
    expect((error as DomainError).cause).toBeDefined();

    const dataKey = { accountId: randomUUID(), tenantId: "t-dup", wrappedKey: "k1.a", createdAt: T0 };
    await h.stores.keys.put(dataKey);
    await expect(h.stores.keys.put({ ...dataKey, wrappedKey: "k1.b" })).rejects.toMatchObject(conflict);

    const message = { id: randomUUID(), tenantId: "t-dup", accountId: randomUUID(), kind: "verify_email", payloadSealed: "x", createdAt: T0 };
    await h.stores.outbox.enqueue([message]);
    await expect(h.stores.outbox.enqueue([message])).rejects.toMatchObject(conflict);
  });

  it("results the contract names stay results: an existing tenant is false from create(), never a conflict", async () => {
    const tenant = { id: randomUUID(), name: "Shop", settings: DEFAULT_TENANT_SETTINGS, createdAt: T0 };
    expect(await h.stores.tenants.create(tenant)).toBe(true);
    expect(await h.stores.tenants.create(tenant)).toBe(false);
    await h.stores.tenants.ensure(tenant);
  });

  it("an error thrown by a callback passes through unchanged", async () => {
    const tenant = { id: randomUUID(), name: "Shop", settings: DEFAULT_TENANT_SETTINGS, createdAt: T0 };
    await h.stores.tenants.create(tenant);
    const refusal = new DomainError("failed_precondition", "REFUSED", "refused");
    await expect(
      h.stores.tenants.update(tenant.id, () => {
        throw refusal;
      }),
    ).rejects.toBe(refusal);
  });
});

describe("an unreachable backend is unavailable", () => {
  it.runIf(BACKENDS.includes("mysql"))("MySQL: connection refused", async () => {
    const database = openSqlDatabase({ mysqlUrl: `mysql://root@127.0.0.1:${await closedPort()}/identity` });
    const stores = createSqlStores(database, database);
    try {
      await expect(stores.tenants.get("default")).rejects.toMatchObject(unavailable);
      await expect(stores.keys.get(randomUUID())).rejects.toMatchObject(unavailable);
    } finally {
      await stores.close();
    }
  });

  it("Redis: connection refused", async () => {
    const stores = createRedisStores(`redis://127.0.0.1:${await closedPort()}`, { now: Date.now });
    try {
      await expect(stores.sessions.get("a", "b")).rejects.toMatchObject(unavailable);
      await expect(stores.tokens.peek("x")).rejects.toMatchObject(unavailable);
      await expect(stores.rateLimiter.hit("k", [{ field: "", limit: 1, windowMs: 1000 }])).rejects.toMatchObject(unavailable);
    } finally {
      await stores.close();
    }
  }, 20_000);
});

describe("the translations, by driver error shape", () => {
  const shaped = (fields: Record<string, unknown>) => Object.assign(new Error("driver text with user@example.test"), fields);

  it.each([
    ["MySQL duplicate key", { errno: 1062, code: "ER_DUP_ENTRY" }, conflict],
    ["SQLite UNIQUE", { code: "ERR_SQLITE_ERROR", errcode: 2067 }, conflict],
    ["SQLite PRIMARY KEY", { code: "ERR_SQLITE_ERROR", errcode: 1555 }, conflict],
    ["MySQL deadlock", { errno: 1213, code: "ER_LOCK_DEADLOCK" }, unavailable],
    ["MySQL lock wait timeout", { errno: 1205, code: "ER_LOCK_WAIT_TIMEOUT" }, unavailable],
    ["SQLite busy", { code: "ERR_SQLITE_ERROR", errcode: 5 }, unavailable],
    ["SQLite busy snapshot", { code: "ERR_SQLITE_ERROR", errcode: 517 }, unavailable],
    ["connection refused", { code: "ECONNREFUSED" }, unavailable],
    ["connection lost", { code: "PROTOCOL_CONNECTION_LOST", fatal: true }, unavailable],
    ["any fatal mysql2 error", { code: "ER_ACCESS_DENIED_ERROR", fatal: true }, unavailable],
  ])("SQL: %s", (_name, fields, expected) => {
    const translated = translateSqlError(shaped(fields));
    expect(translated).toBeInstanceOf(DomainError);
    expect(translated).toMatchObject(expected);
    expect((translated as DomainError).message).not.toContain("example.test");
  });

  it.each([
    ["ECONNRESET", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })],
    ["closed connection", new Error("Connection is closed.")],
    ["retries exhausted", Object.assign(new Error("Reached the max retries per request limit (which is 2)."), { name: "MaxRetriesPerRequestError" })],
    ["command timeout", new Error("Command timed out")],
    ["cluster unreachable", new Error("None of startup nodes is available")],
    ["cluster not ready (calls are not queued)", new Error("Cluster isn't ready and enableOfflineQueue options is false")],
    ["cluster closed", new Error("Cluster is ended.")],
    ["cluster down (slots not served)", new Error("Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down")],
    ["CLUSTERDOWN reply", Object.assign(new Error("CLUSTERDOWN Hash slot not served"), { name: "ReplyError" })],
  ])("Redis: %s", (_name, error) => {
    expect(translateRedisError(error)).toMatchObject(unavailable);
  });

  it("anything else is left as it is (a bug, Internal at the edge)", () => {
    const other = new TypeError("x is undefined");
    expect(translateSqlError(other)).toBe(other);
    expect(translateRedisError(other)).toBe(other);
    expect(translateSqlError(shaped({ errno: 1064, code: "ER_PARSE_ERROR" }))).toMatchObject({ code: "ER_PARSE_ERROR" });
  });

  it("a wrapped port keeps sync methods sync and translates both throws and rejections", async () => {
    const port = translatingErrors(
      {
        sync: () => 1,
        throws: (): number => {
          throw Object.assign(new Error("x"), { errno: 1062 });
        },
        rejects: async () => Promise.reject(Object.assign(new Error("x"), { code: "ECONNREFUSED" })),
      },
      translateSqlError,
    );
    expect(port.sync()).toBe(1);
    expect(() => port.throws()).toThrow(expect.objectContaining(conflict));
    await expect(port.rejects()).rejects.toMatchObject(unavailable);
  });
});
