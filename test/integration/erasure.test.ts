// Erasure, end to end over a real server:
// - DeleteAccount erases every row and session of the person at once, drops their
//   pending messages, voids their single-use links, destroys their data key and
//   ledgers them; the audit trail keeps a pseudonymous "account.erased" event.
// - The drill (MySQL): mysqldump the main database, erase, restore the dump into
//   a fresh database; with the key store not restored, nothing of the person can
//   be decrypted from the copy; `npm run erasure:replay` deletes their rows, and
//   a server started on a restored copy does it by itself. The embedded variant
//   does the same with a copy of identity.sqlite.
// - A raw scan of every table and every Redis value after a full flow finds no
//   email, phone number, display name or token in clear.
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Code } from "@connectrpc/connect";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import type { Config } from "../../src/config.ts";
import type { Keyring } from "../../src/crypto/keyring.ts";
import { openAccount } from "../../src/domain/accounts.ts";
import { SocialProviderKind } from "../../src/domain/social-providers.ts";
import type { StoredAccount } from "../../src/domain/ports/accounts.ts";
import { keyringFor } from "../../src/server/wiring.ts";
import { ACCOUNT_TABLES } from "../../src/store/sql/account-tables.ts";
import { openDurableStores } from "../../src/store/sql/open.ts";
import { BACKENDS, createMysqlDatabase, type BackendName } from "../support/backends.ts";
import { codeOf, createCaller, type Caller, refusal } from "../support/clients.ts";
import { redisEntries } from "../support/redis-dump.ts";
import { cliEnv, linkToken, runCli, startTestServer, type TestServer } from "../support/server.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;

/** Everything personal a person gives us in a full flow, and every secret they are handed. */
interface Person {
  email: string;
  accountId: string;
  sessionToken: string;
  displayName: string;
  phone: string;
  pushToken: string;
  /** Link tokens and session tokens they received. */
  secrets: string[];
}

/** Sign-up, verification, a second sign-in, a profile with a phone number in it, consents, a push token. */
async function fullFlow(server: TestServer, api: Caller, tag: string): Promise<Person> {
  const n = seq++;
  const email = `erasure.${tag}.${n}.${randomBytes(3).toString("hex")}@example.test`;
  await api.call(IdentityService.method.signUp, {
    email,
    password: PASSWORD,
    locale: "en",
    consents: [{ purpose: "terms", version: "2024-01", granted: true }],
  });
  const link = linkToken((await server.waitForMail(email, (m) => m.text.includes("verify-email"))).text);
  const verified = await api.call(IdentityService.method.verifyIdentity, { token: link });
  const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
  const bearer = { authorization: `Bearer ${signedIn.sessionToken}` };
  const displayName = `Ada Lovelace-${randomBytes(4).toString("hex")}`;
  const phone = `+3361${String(10_000_000 + n).slice(-7)}${n % 10}`;
  await api.call(
    AccountService.method.updateAccount,
    { account: { displayName, pronouns: "she/her", customAttributes: { phone } }, updateMask: { paths: ["display_name", "pronouns", "custom_attributes"] } },
    bearer,
  );
  await api.call(AccountService.method.updateConsents, { consents: [{ purpose: "marketing", version: "3", granted: true }] }, bearer);
  const pushToken = `push-${randomBytes(12).toString("hex")}`;
  await api.call(AccountService.method.addPushToken, { pushToken: { deviceId: `device-${n}`, platform: "fcm", token: pushToken } }, bearer);
  return {
    email,
    accountId: verified.accountId,
    sessionToken: signedIn.sessionToken,
    displayName,
    phone,
    pushToken,
    secrets: [link, verified.sessionToken, signedIn.sessionToken],
  };
}

/** Every row of every main-database table that names the account id, by table. */
async function rowsNaming(server: TestServer, accountId: string): Promise<Record<string, unknown[]>> {
  const found: Record<string, unknown[]> = {};
  for (const table of await server.rawTables()) {
    const rows = (await server.rawRows(table)).filter((r) => JSON.stringify(r).includes(accountId));
    if (rows.length > 0) found[table] = rows;
  }
  return found;
}

function mysqlCli(url: string): string[] {
  const u = new URL(url);
  return [
    "-h",
    u.hostname,
    "-P",
    u.port || "3306",
    "-u",
    decodeURIComponent(u.username),
    ...(u.password ? [`-p${decodeURIComponent(u.password)}`] : []),
    decodeURIComponent(u.pathname.slice(1)),
  ];
}

/** Runs a command, feeding `input` on stdin; resolves with stdout, rejects with stderr on failure. */
function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString("utf8")) : reject(new Error(`${command} exited ${code}: ${Buffer.concat(err).toString("utf8")}`)),
    );
    child.stdin.end(input ?? "");
  });
}

async function mysqlRows(url: string, query: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const connection = await createConnection({ uri: url });
  try {
    return (await connection.query(query, params))[0] as Array<Record<string, unknown>>;
  } finally {
    await connection.end();
  }
}

function sqliteRows(path: string, query: string, params: Array<string | number> = []): Array<Record<string, unknown>> {
  const database = new DatabaseSync(path, { readOnly: true });
  try {
    return database.prepare(query).all(...params) as Array<Record<string, unknown>>;
  } finally {
    database.close();
  }
}

/** The account as the restored copy holds it (sealed), for decryption attempts. */
function storedFrom(row: Record<string, unknown>): StoredAccount {
  return {
    id: String(row.id),
    tenantId: String(row.tenant_id),
    role: 1,
    state: 3,
    locale: "en",
    emailVerified: true,
    profileSealed: String(row.profile),
    passwordHash: null,
    plan: "",
    planExpiresAt: null,
    planStatus: 0,
    planRenews: false,
    planRemindedFor: null,
    temporaryPasswordUntil: null,
    createdAt: 0,
    updatedAt: 0,
  };
}

/**
 * With only the key store as it is now (the person's key destroyed), nothing
 * sealed for the person in the restored copy opens: no key is stored under their
 * id, no other stored key unwraps for their id, and no other account's data key
 * opens their profile. The bystander's profile does open: the copy is sound.
 */
function expectUndecryptable(
  keyring: Keyring,
  restored: { person: Record<string, unknown>; bystander: Record<string, unknown> },
  keys: Array<{ account_id: unknown; wrapped_key: unknown }>,
  person: Person,
  bystander: Person,
) {
  const personId = person.accountId;
  expect(String(restored.person.profile)).not.toContain(person.displayName);
  expect(keys.some((k) => k.account_id === personId)).toBe(false);
  expect(keys.length).toBeGreaterThan(0);
  for (const key of keys) {
    expect(() => keyring.unwrapDataKey(personId, String(key.wrapped_key))).toThrow();
    expect(() => openAccount(keyring, storedFrom(restored.person), String(key.wrapped_key))).toThrow();
  }
  const bystanderKey = keys.find((k) => k.account_id === bystander.accountId);
  expect(openAccount(keyring, storedFrom(restored.bystander), String(bystanderKey?.wrapped_key)).account.profile.displayName).toBe(bystander.displayName);
}

describe.each(BACKENDS)("erasure on the %s backend", (backend: BackendName) => {
  let server: TestServer;
  let api: Caller;
  let clockOffset = 0;
  let keyDatabase: { url: string; drop: () => Promise<void> } | undefined;

  beforeAll(async () => {
    // The key store in a database of its own, as production should run it.
    keyDatabase = backend === "mysql" ? await createMysqlDatabase() : undefined;
    server = await startTestServer(backend, {
      env: keyDatabase ? { KEYSTORE_MYSQL_URL: keyDatabase.url } : {},
      runtime: { now: () => Date.now() + clockOffset },
    });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await keyDatabase?.drop();
  });

  const bearer = (p: Person) => ({ authorization: `Bearer ${p.sessionToken}` });

  it("DeleteAccount erases the person at once: rows, sessions, pending messages, links, key — and nobody else", async () => {
    const person = await fullFlow(server, api, "self");
    const bystander = await fullFlow(server, api, "bystander");
    const otherSession = await api.call(SessionService.method.signIn, {
      method: { case: "emailPassword", value: { email: person.email, password: PASSWORD } },
    });
    // A reset link still to be used, and its message still pending in the outbox.
    await server.runtime.outboxWorker.stop();
    await api.call(IdentityService.method.startPasswordReset, { email: person.email, locale: "" });
    const pending = (await server.rawRows("outbox")).filter((r) => r.account_id === person.accountId && r.status === "pending");
    expect(pending.length).toBeGreaterThan(0);
    server.runtime.outboxWorker.start();
    const reset = linkToken((await server.waitForMail(person.email, (m) => m.text.includes("reset-password?token="))).text);
    await server.runtime.outboxWorker.stop();
    await api.call(IdentityService.method.startPasswordReset, { email: person.email, locale: "" }); // stays pending
    expect((await server.rawRows("outbox")).some((r) => r.account_id === person.accountId && r.status === "pending")).toBe(true);
    expect(Object.keys(await rowsNaming(server, person.accountId))).toEqual(expect.arrayContaining(["accounts", "identities", "outbox", "consents"]));

    await api.call(AccountService.method.deleteAccount, {}, bearer(person));

    // Refused at once, everywhere.
    for (const token of [person.sessionToken, otherSession.sessionToken]) {
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: token }))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(AccountService.method.getAccount, {}, { authorization: `Bearer ${token}` }))).toBe(Code.Unauthenticated);
    }
    expect(
      await codeOf(api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: person.email, password: PASSWORD } } })),
    ).toBe(Code.Unauthenticated);
    // The single-use link outlived the erasure in Redis, but points at nothing: refused.
    const linkRefused = await refusal(api.call(IdentityService.method.checkPasswordResetCode, { code: reset }));
    expect(linkRefused.code).toBe(Code.InvalidArgument);
    expect(linkRefused.rawMessage).toContain("invalid, expired or already used");

    // Nothing in the main database names the person but the pseudonymous audit trail and
    // the erasure's own event (account.deleted: the id, for subscribers to erase theirs).
    const left = await rowsNaming(server, person.accountId);
    expect(Object.keys(left).sort()).toEqual(["audit_events", "events"]);
    expect((left.events as Array<{ type: string; data: string }>).map((e) => [e.type, e.data])).toEqual([["account.deleted", "{}"]]);
    for (const { table } of ACCOUNT_TABLES) if (table !== "events") expect(left[table], table).toBeUndefined();
    // The key is gone and the erasure ledgered, in the key store.
    expect((await server.rawKeyRows("account_keys")).filter((r) => r.account_id === person.accountId)).toEqual([]);
    const ledger = (await server.rawKeyRows("erasure_ledger")).filter((r) => r.account_id === person.accountId);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]!.tenant_id).toBe("default");
    const erased = await server.runtime.app.audit.list({
      tenantId: "default",
      action: "account.erased",
      target: `account:${person.accountId}`,
      pageSize: 0,
      pageToken: "",
    });
    expect(erased.events).toHaveLength(1);
    expect(erased.events[0]).toMatchObject({ actor: `account:${person.accountId}`, reason: "", ip: "", userAgent: "", outcome: "success" });

    // The pending message was dropped: nothing more reaches the person.
    const before = server.inbox.filter((m) => m.envelopeTo.includes(person.email)).length;
    server.runtime.outboxWorker.start();
    await server.runtime.outboxWorker.nudge();
    await new Promise((r) => setTimeout(r, 300));
    expect(server.inbox.filter((m) => m.envelopeTo.includes(person.email)).length).toBe(before);

    // The bystander keeps everything.
    const { account } = await api.call(AccountService.method.getAccount, {}, bearer(bystander));
    expect(account?.displayName).toBe(bystander.displayName);
    // The address is free again.
    await api.call(IdentityService.method.signUp, { email: person.email, password: PASSWORD, locale: "en" });
    await server.waitForMail(person.email, (m) => m.text.includes("verify-email") && !person.secrets.includes(linkToken(m.text)));
  });

  it("an older session must give the password: none → FailedPrecondition, wrong → Unauthenticated (rate-limited like sign-in), right → erased", async () => {
    const person = await fullFlow(server, api, "old-session");
    clockOffset += 11 * 60_000;
    try {
      const missing = await refusal(api.call(AccountService.method.deleteAccount, {}, bearer(person)));
      expect(missing.code).toBe(Code.FailedPrecondition);
      expect(missing.rawMessage).toContain("sign-in within the last 10 minutes");
      expect(await codeOf(api.call(AccountService.method.deleteAccount, { password: "not the password at all" }, bearer(person)))).toBe(Code.Unauthenticated);
      expect((await api.call(AccountService.method.getAccount, {}, bearer(person))).account?.id).toBe(person.accountId);
      await api.call(AccountService.method.deleteAccount, { password: PASSWORD }, bearer(person));
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: person.sessionToken }))).toBe(Code.Unauthenticated);
      expect(await rowsNaming(server, person.accountId)).not.toHaveProperty("accounts");
    } finally {
      clockOffset -= 11 * 60_000;
    }
  });

  it("the last active super admin cannot erase themself", async () => {
    const email = `root.${backend}.${randomBytes(3).toString("hex")}@example.test`;
    const { accountId } = await server.runtime.bootstrap.createSuperAdmin({ email, password: PASSWORD, promote: false });
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    const refused = await refusal(api.call(AccountService.method.deleteAccount, {}, { authorization: `Bearer ${signedIn.sessionToken}` }));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("last active super admin");
    expect((await server.rawKeyRows("account_keys")).some((r) => r.account_id === accountId)).toBe(true);
    expect((await server.rawKeyRows("erasure_ledger")).some((r) => r.account_id === accountId)).toBe(false);
  });

  it("wrong passwords count against the address's sign-in limit", async () => {
    const person = await fullFlow(server, api, "guesses");
    let code: Code | undefined;
    for (let i = 0; i < 30 && code !== Code.ResourceExhausted; i++)
      code = await codeOf(api.call(AccountService.method.deleteAccount, { password: `guess number ${i} here` }, bearer(person)));
    expect(code).toBe(Code.ResourceExhausted);
    expect((await api.call(AccountService.method.getAccount, {}, bearer(person))).account?.id).toBe(person.accountId);
  });

  it("a raw scan of every table and every Redis value after a full flow finds no email, phone, display name, token, TOTP secret, recovery code, challenge or provider secret in clear", async () => {
    const people = [await fullFlow(server, api, "scan-a"), await fullFlow(server, api, "scan-b")];
    // A second factor each (TOTP secret, recovery codes) and a sign-in waiting on its challenge.
    const factors: string[] = [];
    for (const p of people) {
      const started = await api.call(AccountService.method.startTotpEnrollment, {}, bearer(p));
      const { recoveryCodes } = await api.call(AccountService.method.confirmTotpEnrollment, { code: appCode(started.secret) }, bearer(p));
      const { secondFactorChallenge } = await api.call(SessionService.method.signIn, {
        method: { case: "emailPassword", value: { email: p.email, password: PASSWORD } },
      });
      expect(secondFactorChallenge?.challenge).toBeTruthy();
      factors.push(started.secret, ...recoveryCodes, ...recoveryCodes.map((c) => c.replace("-", "")), secondFactorChallenge!.challenge);
    }
    // A tenant's social providers: a client secret and an Apple private key, sealed at rest.
    const clientSecret = `client-secret-${randomBytes(12).toString("hex")}`;
    const appleKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const provider = { name: "scan", issuer: "", scopes: [], redirectUris: ["https://app.example.test/cb"] };
    await server.runtime.app.socialProviders.create(
      "default",
      { ...provider, kind: SocialProviderKind.GOOGLE, clientId: "scan-google", appleTeamId: "", appleKeyId: "" },
      { clientSecret, applePrivateKey: "" },
    );
    await server.runtime.app.socialProviders.create(
      "default",
      { ...provider, kind: SocialProviderKind.APPLE, clientId: "scan-apple", appleTeamId: "ABCDE12345", appleKeyId: "KEY1234567" },
      { clientSecret: "", applePrivateKey: appleKey },
    );
    const needles = [...factors, clientSecret, ...appleKey.split("\n").filter((line) => line.length > 20 && !line.startsWith("-----"))].concat(
      people.flatMap((p) => [
        p.email,
        p.email.toUpperCase(),
        p.phone,
        p.displayName,
        p.pushToken,
        PASSWORD,
        ...p.secrets.map((s) => s.slice(s.indexOf(".") + 1)),
        p.sessionToken.split(".")[1]!,
      ]),
    );
    const haystacks: Array<{ where: string; text: string }> = [];
    for (const table of await server.rawTables()) haystacks.push({ where: `table ${table}`, text: JSON.stringify(await server.rawRows(table)) });
    for (const table of ["account_keys", "erasure_ledger"])
      haystacks.push({ where: `key store ${table}`, text: JSON.stringify(await server.rawKeyRows(table)) });
    if (server.config.redisUrl) {
      const entries = await redisEntries(server.config.redisKeyPrefix);
      expect(entries.length).toBeGreaterThan(0); // sessions and limits are there to scan
      for (const { key, text } of entries) haystacks.push({ where: `redis ${key}`, text });
    }
    expect(haystacks.length).toBeGreaterThan(5);
    const leaks = haystacks.flatMap(({ where, text }) => needles.filter((n) => text.toLowerCase().includes(n.toLowerCase())).map((n) => `${where}: ${n}`));
    expect(leaks).toEqual([]);
    // The scan can see: the account ids (not secret) are there.
    expect(haystacks.some(({ text }) => text.includes(people[0]!.accountId))).toBe(true);
  });
});

describe.runIf(BACKENDS.includes("mysql"))("the erasure drill on MySQL: mysqldump, erase, restore into a fresh database, replay the ledger", () => {
  let server: TestServer;
  let api: Caller;
  const dropLater: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const keys = await createMysqlDatabase();
    dropLater.push(keys.drop);
    server = await startTestServer("mysql", { env: { KEYSTORE_MYSQL_URL: keys.url } });
    api = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    for (const drop of dropLater) await drop();
  });

  async function restore(dump: string): Promise<string> {
    const fresh = await createMysqlDatabase();
    dropLater.push(fresh.drop);
    await run("mysql", mysqlCli(fresh.url), dump);
    return fresh.url;
  }

  it("erased before the dump is restored: unreadable without the replay, gone after it; a server started on a restored copy replays by itself", async () => {
    const config: Config = server.config;
    const keyring = keyringFor(config);
    const person = await fullFlow(server, api, "drill");
    const bystander = await fullFlow(server, api, "drill-bystander");
    await server.runtime.outboxWorker.stop(); // a message still pending in the backup
    await api.call(IdentityService.method.startPasswordReset, { email: person.email, locale: "" });

    const dump = await run("mysqldump", ["--single-transaction", "--skip-lock-tables", "--skip-comments", ...mysqlCli(config.mysqlUrl!)]);
    expect(dump).toContain(person.accountId);
    expect(dump).not.toContain(person.email);
    expect(dump).not.toContain("CREATE TABLE `erasure_ledger`"); // the key store is elsewhere, with its own backups

    await api.call(AccountService.method.deleteAccount, {}, { authorization: `Bearer ${person.sessionToken}` });
    expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: person.sessionToken }))).toBe(Code.Unauthenticated);

    // The backup comes back into a fresh database; the key store is NOT restored.
    const restoredUrl = await restore(dump);
    const row = async (id: string) => (await mysqlRows(restoredUrl, "SELECT * FROM accounts WHERE id = ?", [id]))[0];
    const restored = { person: (await row(person.accountId))!, bystander: (await row(bystander.accountId))! };
    expect(restored.person).toBeDefined();
    expect((await mysqlRows(restoredUrl, "SELECT * FROM identities WHERE account_id = ?", [person.accountId])).length).toBe(1);

    // (a) Before the replay: nothing of the person decrypts from the copy.
    const keys = await mysqlRows(config.keystoreMysqlUrl!, "SELECT account_id, wrapped_key FROM account_keys");
    expectUndecryptable(keyring, restored, keys as Array<{ account_id: unknown; wrapped_key: unknown }>, person, bystander);
    const { stores } = await openDurableStores({ ...config, mysqlUrl: restoredUrl }, { migrate: false });
    try {
      expect(await stores.accounts.getAccount("default", person.accountId)).toBeUndefined();
      expect((await stores.accounts.getAccount("default", bystander.accountId))?.account.id).toBe(bystander.accountId);
    } finally {
      await stores.close();
    }

    // (b) The replay command deletes the person's rows from the restored copy, and only theirs.
    const env: Record<string, string> = { ...cliEnv(config), MYSQL_URL: restoredUrl };
    const replayed = await runCli("erasure-replay.ts", env);
    expect(replayed.stderr).toBe("");
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toMatch(/done: 1 of \d+ erased accounts had rows in the main database again/);
    for (const { table, column } of ACCOUNT_TABLES) {
      expect(await mysqlRows(restoredUrl, `SELECT * FROM ${table} WHERE ${column} = ?`, [person.accountId]), table).toEqual([]);
    }
    expect(await row(bystander.accountId)).toBeDefined();
    expect((await mysqlRows(restoredUrl, "SELECT * FROM consents WHERE account_id = ?", [bystander.accountId])).length).toBeGreaterThan(0);
    const again = await runCli("erasure-replay.ts", env);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/done: none of the \d+ erased accounts has rows/);

    // A server started on another restored copy replays before it serves.
    const secondUrl = await restore(dump);
    expect((await mysqlRows(secondUrl, "SELECT id FROM accounts WHERE id = ?", [person.accountId])).length).toBe(1);
    const second = await startTestServer("mysql", {
      env: {
        MYSQL_URL: secondUrl,
        KEYSTORE_MYSQL_URL: config.keystoreMysqlUrl!,
        KEY_ENCRYPTION_KEYS: env.KEY_ENCRYPTION_KEYS!,
        BLIND_INDEX_KEY: env.BLIND_INDEX_KEY!,
      },
    });
    try {
      for (const { table, column } of ACCOUNT_TABLES)
        expect(await mysqlRows(secondUrl, `SELECT * FROM ${table} WHERE ${column} = ?`, [person.accountId]), table).toEqual([]);
      const other = createCaller("connect-json-h1", second.baseUrl);
      const signedIn = await other.call(SessionService.method.signIn, {
        method: { case: "emailPassword", value: { email: bystander.email, password: PASSWORD } },
      });
      expect(signedIn.accountId).toBe(bystander.accountId);
      expect(
        await codeOf(other.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: person.email, password: PASSWORD } } })),
      ).toBe(Code.Unauthenticated);
    } finally {
      await second.close();
    }
  });
});

describe("the erasure drill on the embedded backend: a copy of identity.sqlite, restored after the erasure", () => {
  it("is unreadable without the replay, and clean after it", async () => {
    const server = await startTestServer("embedded");
    const api = createCaller("connect-json-h1", server.baseUrl);
    const backupDir = mkdtempSync(join(tmpdir(), "identity-backup-"));
    const restoredDir = mkdtempSync(join(tmpdir(), "identity-restored-"));
    try {
      const keyring = keyringFor(server.config);
      const person = await fullFlow(server, api, "embedded-drill");
      const bystander = await fullFlow(server, api, "embedded-bystander");
      const backup = (file: string, to: string) => {
        const database = new DatabaseSync(join(server.config.dataDir, file));
        try {
          database.exec(`VACUUM INTO '${to}'`);
        } finally {
          database.close();
        }
      };
      backup("identity.sqlite", join(backupDir, "identity.sqlite"));

      await api.call(AccountService.method.deleteAccount, {}, { authorization: `Bearer ${person.sessionToken}` });
      // The key store as it is now (not restored), next to the old main database.
      backup("keys.sqlite", join(restoredDir, "keys.sqlite"));
      copyFileSync(join(backupDir, "identity.sqlite"), join(restoredDir, "identity.sqlite"));
      const main = join(restoredDir, "identity.sqlite");
      const accountRow = (id: string) => sqliteRows(main, "SELECT * FROM accounts WHERE id = ?", [id])[0]!;
      const restored = { person: accountRow(person.accountId), bystander: accountRow(bystander.accountId) };
      expect(restored.person).toBeDefined();
      expectUndecryptable(
        keyring,
        restored,
        sqliteRows(join(restoredDir, "keys.sqlite"), "SELECT account_id, wrapped_key FROM account_keys") as Array<{
          account_id: unknown;
          wrapped_key: unknown;
        }>,
        person,
        bystander,
      );

      const replayed = await runCli("erasure-replay.ts", { ...cliEnv(server.config), DATA_DIR: restoredDir });
      expect(replayed.code).toBe(0);
      expect(replayed.stdout).toMatch(/done: 1 of 1 erased accounts had rows/);
      for (const { table, column } of ACCOUNT_TABLES)
        expect(sqliteRows(main, `SELECT * FROM ${table} WHERE ${column} = ?`, [person.accountId]), table).toEqual([]);
      expect(accountRow(bystander.accountId)).toBeDefined();
    } finally {
      api.close();
      await server.close();
      rmSync(backupDir, { recursive: true, force: true });
      rmSync(restoredDir, { recursive: true, force: true });
    }
  });
});
