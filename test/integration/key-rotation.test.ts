// Key rotation without downtime, end to end: accounts created under KEK "old";
// a server configured "new,old" keeps answering sign-ins and profile reads in
// parallel loops while `npm run keys:rotate` rewraps every data key (in small
// batches, so the run overlaps the traffic); afterwards a server configured
// with ONLY "new" signs everyone in and decrypts every account.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { newEmailAccount } from "../../src/domain/accounts.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { keyringFor } from "../../src/server/wiring.ts";
import { BACKENDS, createMysqlDatabase, type BackendName } from "../support/backends.ts";
import { createCaller } from "../support/clients.ts";
import { cliEnv, linkToken, runCli, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const OLD = `old:${randomBytes(32).toString("base64")}`;
const NEW = `new:${randomBytes(32).toString("base64")}`;
const BLIND = randomBytes(32).toString("base64");
/** Accounts written straight to the store (no argon2), so the rotation has batches to work through. */
const BULK = 1500;

describe.each(BACKENDS)("key rotation under load on the %s backend", (backend: BackendName) => {
  let first: TestServer;
  const servers: TestServer[] = [];
  let keyDatabase: { url: string; drop: () => Promise<void> } | undefined;
  const people: Array<{ email: string; accountId: string; displayName: string }> = [];
  const bulk: string[] = [];

  /** Another server on the first one's databases, with these KEKs. */
  async function sibling(keks: string): Promise<TestServer> {
    const shared: Record<string, string> = first.config.mysqlUrl
      ? { MYSQL_URL: first.config.mysqlUrl, KEYSTORE_MYSQL_URL: first.config.keystoreMysqlUrl!, REDIS_KEY_PREFIX: first.config.redisKeyPrefix }
      : { DATA_DIR: first.config.dataDir };
    const server = await startTestServer(backend, { env: { ...shared, KEY_ENCRYPTION_KEYS: keks, BLIND_INDEX_KEY: BLIND } });
    servers.push(server);
    return server;
  }

  beforeAll(async () => {
    keyDatabase = backend === "mysql" ? await createMysqlDatabase() : undefined;
    first = await startTestServer(backend, {
      env: { KEY_ENCRYPTION_KEYS: OLD, BLIND_INDEX_KEY: BLIND, ...(keyDatabase ? { KEYSTORE_MYSQL_URL: keyDatabase.url } : {}) },
    });
    // The load signs the same people in again and again: lift the sign-in limits.
    await first.runtime.app.tenants.update("default", (t) => ({
      name: t.name,
      settings: { ...t.settings, signInPerAccountLimit: 1_000_000, signInPerIpLimit: 1_000_000 },
    }));
    const api = createCaller("connect-json-h1", first.baseUrl);
    try {
      for (let i = 0; i < 4; i++) {
        const email = `rotation.${i}.${randomBytes(3).toString("hex")}@example.test`;
        await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
        const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await first.waitForMail(email)).text) });
        const displayName = `Person ${i} ${randomBytes(3).toString("hex")}`;
        await api.call(
          AccountService.method.updateAccount,
          { account: { displayName }, updateMask: { paths: ["display_name"] } },
          { authorization: `Bearer ${verified.sessionToken}` },
        );
        people.push({ email, accountId: verified.accountId, displayName });
      }
    } finally {
      api.close();
    }
    const keyring = keyringFor(first.config);
    for (let i = 0; i < BULK; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, BULK - i) }, async (_, j) => {
          const { dataKey: _key, ...rows } = newEmailAccount(keyring, {
            tenantId: "default",
            email: `bulk.${i + j}@example.test`,
            lookupHash: keyring.blindIndex("email", `bulk.${i + j}.${randomBytes(4).toString("hex")}@example.test`),
            passwordHash: null,
            role: Role.USER,
            state: AccountState.ACTIVE,
            locale: "en",
            verifiedAt: Date.now(),
            at: Date.now(),
          });
          await first.runtime.durable.accounts.createAccount({ ...rows, messages: [] });
          bulk.push(rows.account.id);
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    for (const server of servers.reverse()) await server.close();
    await first?.close();
    await keyDatabase?.drop();
  });

  const wrappings = async (server: TestServer) => (await server.rawKeyRows("account_keys")).map((r) => String(r.wrapped_key).split(".")[0]);

  // A CLI process rewraps 1,500 keys under sign-in load: allowed 90 s, more than the default 30 s, for a loaded 2-core machine.
  it("keeps serving sign-ins and profile reads while the keys are rewrapped; then only the new KEK is needed", async () => {
    expect(new Set(await wrappings(first))).toEqual(new Set(["old"]));
    // The servers share one outbox: only `during` delivers, so the newcomer's mail reaches its inbox.
    await first.runtime.outboxWorker.stop();
    const during = await sibling(`${NEW},${OLD}`);
    const api = createCaller("connect-json-h1", during.baseUrl);
    let rotating = true;
    const outcomes = { signIns: 0, reads: 0, failures: [] as string[] };
    // Each person signs in and reads their profile over and over until the rotation ends.
    const load = people.map(async (person) => {
      while (rotating) {
        try {
          const signedIn = await api.call(SessionService.method.signIn, {
            method: { case: "emailPassword", value: { email: person.email, password: PASSWORD } },
          });
          outcomes.signIns++;
          for (let i = 0; i < 5 && rotating; i++) {
            const { account } = await api.call(AccountService.method.getAccount, {}, { authorization: `Bearer ${signedIn.sessionToken}` });
            if (account?.displayName !== person.displayName) outcomes.failures.push(`read ${JSON.stringify(account?.displayName)}`);
            outcomes.reads++;
          }
        } catch (error) {
          outcomes.failures.push(String(error));
        }
      }
    });
    // A sign-up during the rotation gets a key under the new KEK.
    const newcomer = `rotation.newcomer.${randomBytes(3).toString("hex")}@example.test`;
    const signUp = api.call(IdentityService.method.signUp, { email: newcomer, password: PASSWORD, locale: "en" });
    const rotation = await runCli("rotate-keys.ts", cliEnv(during.config), ["--batch", "25"]).finally(() => {
      rotating = false;
    });
    await Promise.all([...load, signUp]);
    const newcomerId = (await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await during.waitForMail(newcomer)).text) })).accountId;
    api.close();

    expect(rotation.stderr).toBe("");
    expect(rotation.code).toBe(0);
    expect(rotation.stdout).toContain('done: every data key is wrapped by "new"');
    expect(rotation.stdout.split("\n").filter((l) => l.startsWith("scanned")).length).toBeGreaterThan(BULK / 25 - 1);
    expect(outcomes.failures).toEqual([]);
    expect(outcomes.signIns).toBeGreaterThanOrEqual(people.length);
    expect(outcomes.reads).toBeGreaterThan(people.length);
    expect(new Set(await wrappings(during))).toEqual(new Set(["new"]));

    // Run again: nothing left to do.
    const again = await runCli("rotate-keys.ts", cliEnv(during.config));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("rewrapped 0");

    // The old KEK removed from the configuration: everything still decrypts.
    const after = await sibling(NEW);
    const check = createCaller("connect-json-h1", after.baseUrl);
    try {
      for (const person of [...people, { email: newcomer, accountId: newcomerId, displayName: "" }]) {
        const signedIn = await check.call(SessionService.method.signIn, {
          method: { case: "emailPassword", value: { email: person.email, password: PASSWORD } },
        });
        const { account } = await check.call(AccountService.method.getAccount, {}, { authorization: `Bearer ${signedIn.sessionToken}` });
        expect(account?.displayName).toBe(person.displayName);
      }
      for (let i = 0; i < bulk.length; i += 100) {
        const accounts = await Promise.all(bulk.slice(i, i + 100).map((id) => after.runtime.app.accounts.get("default", id)));
        expect(accounts.every((a) => /^bulk\.[0-9]+@example\.test$/.test(a.profile.email))).toBe(true);
      }
    } finally {
      check.close();
    }
  }, 90_000);
});
