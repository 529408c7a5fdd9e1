// The audit trail end to end over a real server on every backend: sign-ups,
// verifications, sign-ins, failures and rate-limit hits of end users are
// recorded as security events (never with an email address); an admin reads
// them with ListAuditEvents (filters, keyset pages, opaque tokens);
// VerifyAuditChain and `npm run audit:verify` report the chain intact, then
// name exactly the event altered — and the event deleted — directly in the
// database (MySQL/MariaDB and SQLite).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService, type AuditEvent } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import type { Config } from "../../src/config.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, type Caller } from "../support/clients.ts";
import { cliEnv, linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const USER_AGENT = "audit-test-device/1.0";
let seq = 0;
const uniqueEmail = (tag: string) => `audit.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Runs one statement directly against the server's database (not through the service). */
async function rawExec(config: Config, statement: string, params: Array<string | number>): Promise<void> {
  if (config.mysqlUrl) {
    const connection = await createConnection({ uri: config.mysqlUrl });
    try {
      await connection.execute(statement, params);
    } finally {
      await connection.end();
    }
    return;
  }
  const database = new DatabaseSync(join(config.dataDir, "identity.sqlite"), { timeout: 5000 });
  try {
    database.prepare(statement).run(...params);
  } finally {
    database.close();
  }
}

/** `node src/cli/audit-verify.ts` against the server's database, as an operator would run it. */
function runVerifyCli(config: Config): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["src/cli/audit-verify.ts"], { cwd: process.cwd(), env: cliEnv(config), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

describe.each(BACKENDS)("the audit trail on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let clockOffset = 0;
  const ids: Record<string, string> = {};
  let admin: Record<string, string>;
  let aliceToken: string;

  async function signUpAndVerify(email: string) {
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
    return api.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
  }
  const signIn = (email: string, password = PASSWORD) =>
    api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password } } });

  async function listAll(filter: { actor?: string; target?: string; action?: string } = {}): Promise<AuditEvent[]> {
    const { events, nextPageToken } = await api.call(AdminService.method.listAuditEvents, { pageSize: 500, ...filter }, admin);
    expect(nextPageToken).toBe("");
    return events;
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now: () => Date.now() + clockOffset } });
    api = createCaller("connect-json-h1", server.baseUrl, { userAgent: USER_AGENT });

    const alice = uniqueEmail("alice");
    const bob = uniqueEmail("bob");
    const carol = uniqueEmail("carol");
    ids.alice = (await signUpAndVerify(alice)).accountId;
    ids.bob = (await signUpAndVerify(bob)).accountId;
    await api.call(IdentityService.method.signUp, { email: carol, password: PASSWORD, locale: "en" }); // never verified
    await api.call(IdentityService.method.signUp, { email: alice, password: `${PASSWORD} again`, locale: "en" }); // a taken address
    aliceToken = (await signIn(alice)).sessionToken;
    expect(await codeOf(signIn(alice, "not the password at all"))).toBe(Code.Unauthenticated);
    expect(await codeOf(signIn(uniqueEmail("nobody")))).toBe(Code.Unauthenticated);
    expect(await codeOf(signIn(carol))).toBe(Code.FailedPrecondition);
    // Ten refused attempts on one address, then the limit: two more are refused as rate limited.
    const target = uniqueEmail("targeted");
    for (let i = 0; i < 10; i++) expect(await codeOf(signIn(target, `guess number ${i}`))).toBe(Code.Unauthenticated);
    expect(await codeOf(signIn(target, "guess 11"))).toBe(Code.ResourceExhausted);
    expect(await codeOf(signIn(target, "guess 12"))).toBe(Code.ResourceExhausted);

    // Bob becomes an admin directly in the database; his next session carries the role.
    await rawExec(server.config, "UPDATE accounts SET role = 2 WHERE id = ?", [ids.bob!]);
    admin = bearer((await signIn(bob)).sessionToken);
    const carolRow = (await server.rawRows("accounts")).find((r) => r.id !== ids.alice && r.id !== ids.bob && Number(r.state) === 1);
    ids.carol = String(carolRow?.id);
  }, 120_000);
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  it("records sign-ups, verifications, sign-ins, failures and rate-limit hits as security events, naming accounts by id only", async () => {
    const events = await listAll();
    expect(events.map((e) => Number(e.sequence))).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.tenantId))).toEqual(new Set(["default"]));
    for (const e of events) {
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify({ ...e, sequence: 0, eventTime: 0 })).not.toContain("@"); // no email address anywhere
    }
    const find = (action: string, target: string, outcome: string) => events.filter((e) => e.action === action && e.target === target && e.outcome === outcome);
    const alice = `account:${ids.alice}`;
    expect(find("identity.sign_up", alice, "success")).toHaveLength(1);
    expect(find("identity.sign_up", "", "IDENTITY_EXISTS")).toHaveLength(1);
    expect(find("identity.sign_up", `account:${ids.carol}`, "success")).toHaveLength(1);
    expect(find("identity.verify", alice, "success")).toHaveLength(1);
    expect(find("session.sign_in", alice, "success")).toHaveLength(1);
    expect(find("session.sign_in_failed", alice, "INVALID_CREDENTIALS")).toHaveLength(1);
    expect(find("session.sign_in_failed", `account:${ids.carol}`, "IDENTITY_UNVERIFIED")).toHaveLength(1);
    // Unknown addresses: recorded, with no target (eleven: "nobody" and ten guesses).
    expect(find("session.sign_in_failed", "", "INVALID_CREDENTIALS")).toHaveLength(11);
    // Two refusals by the rate limit, one event: a refused flood stays cheap.
    expect(events.filter((e) => e.action === "session.rate_limited")).toEqual([expect.objectContaining({ target: "", outcome: "RATE_LIMITED" })]);

    const signedIn = find("session.sign_in", alice, "success")[0]!;
    expect(signedIn.actor).toBe("anonymous");
    expect(signedIn.ipAddress).toBe("127.0.0.1");
    expect(signedIn.userAgent).toContain(USER_AGENT);
    expect(Math.abs(Number(signedIn.eventTime?.seconds) - Date.now() / 1000)).toBeLessThan(300);

    // Nothing in the table holds an email address either.
    expect(JSON.stringify(await server.rawRows("audit_events"))).not.toContain("@example.test");
  });

  it("filters by action, target, actor and time, and pages through everything exactly once", async () => {
    const failures = await listAll({ action: "session.sign_in_failed" });
    expect(failures.length).toBe(13);
    expect(new Set(failures.map((e) => e.action))).toEqual(new Set(["session.sign_in_failed"]));

    const aboutAlice = await listAll({ target: `account:${ids.alice}` });
    expect(aboutAlice.map((e) => e.action)).toEqual(["identity.sign_up", "identity.verify", "session.sign_in", "session.sign_in_failed"]);

    // Reading the trail is itself audited: the admin's reads, with the target filter as the target.
    const byAdmin = await listAll({ actor: `account:${ids.bob}` });
    expect(byAdmin.length).toBeGreaterThanOrEqual(3);
    expect(new Set(byAdmin.map((e) => e.action))).toEqual(new Set(["audit.list"]));
    expect(byAdmin.some((e) => e.target === `account:${ids.alice}`)).toBe(true);

    // Time: events from a moment on (the server's clock jumps an hour ahead).
    clockOffset = 3_600_000;
    const from = Date.now() + clockOffset;
    await api
      .call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: `x${uniqueEmail("late")}`, password: PASSWORD } } })
      .catch(() => undefined);
    const late = await listAll({ action: "session.sign_in_failed" });
    const lateOnly = await api.call(AdminService.method.listAuditEvents, { action: "session.sign_in_failed", after: timestampFromMs(from) }, admin);
    expect(lateOnly.events).toHaveLength(1);
    expect(lateOnly.events[0]?.sequence).toBe(late[late.length - 1]?.sequence);
    const early = await api.call(
      AdminService.method.listAuditEvents,
      { action: "session.sign_in_failed", before: timestampFromMs(from), pageSize: 500 },
      admin,
    );
    expect(early.events).toHaveLength(late.length - 1);

    // Pages of 7: every event exactly once, in order, although each call appends an event itself.
    const seen: number[] = [];
    let pageToken = "";
    for (let pages = 0; ; pages++) {
      const page = await api.call(AdminService.method.listAuditEvents, { pageSize: 7, pageToken }, admin);
      expect(page.events.length).toBeLessThanOrEqual(7);
      seen.push(...page.events.map((e) => Number(e.sequence)));
      if (page.nextPageToken === "") break;
      expect(page.nextPageToken).toMatch(/^[A-Za-z0-9_-]+$/);
      pageToken = page.nextPageToken;
      expect(pages).toBeLessThan(50);
    }
    expect(seen).toEqual(seen.map((_, i) => i + 1));
    expect(seen.length).toBeGreaterThan(30);

    // A token is opaque and tied to its filters; a changed or made-up one is refused, naming the field.
    const first = await api.call(AdminService.method.listAuditEvents, { pageSize: 2 }, admin);
    for (const request of [
      { pageToken: "not-a-token" },
      { pageToken: first.nextPageToken.slice(0, -2) },
      { pageToken: first.nextPageToken, action: "session.sign_in" },
      { pageSize: -5 },
    ]) {
      const error = await api.call(AdminService.method.listAuditEvents, request, admin).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.InvalidArgument);
      expect(error?.rawMessage).toMatch(request.pageSize ? /page_size/ : /page_token/);
    }
  });

  it("lets only the tenant's admins and keys holding audit.read read or verify the trail", async () => {
    const user = bearer(aliceToken);
    for (const method of [AdminService.method.listAuditEvents, AdminService.method.verifyAuditChain] as const) {
      expect(await codeOf(api.call(method as typeof AdminService.method.listAuditEvents, {}))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(method as typeof AdminService.method.listAuditEvents, {}, user))).toBe(Code.PermissionDenied);
    }
    const { secret: reader } = await server.runtime.app.apiKeys.create({ tenantId: "default", name: "siem", permissions: ["audit.read"], createdBy: "system" });
    const { secret: other } = await server.runtime.app.apiKeys.create({ tenantId: "default", name: "users", permissions: ["users.read"], createdBy: "system" });
    const listed = await api.call(AdminService.method.listAuditEvents, { pageSize: 1 }, bearer(reader));
    expect(listed.events).toHaveLength(1);
    expect((await api.call(AdminService.method.verifyAuditChain, {}, bearer(reader))).intact).toBe(true);
    expect(await codeOf(api.call(AdminService.method.listAuditEvents, {}, bearer(other)))).toBe(Code.PermissionDenied);
    // An admin of the default tenant does not read another tenant's trail.
    expect(await codeOf(api.call(AdminService.method.listAuditEvents, {}, { ...admin, "x-tenant-id": "another" }))).toBe(Code.PermissionDenied);
  });

  it("keeps the chain whole and complete when sign-ins and admin reads of one tenant append at once", async () => {
    const alice = `account:${ids.alice}`;
    const before = await listAll({ target: alice });
    const aliceEmail = (await api.call(AdminService.method.getUser, { accountId: ids.alice!, reason: "audit test lookup" }, admin)).account!.email;
    await Promise.all([
      ...Array.from({ length: 4 }, () => signIn(aliceEmail)),
      ...Array.from({ length: 4 }, (_, i) => api.call(AdminService.method.getUser, { accountId: ids.alice!, reason: `concurrent read ${i}` }, admin)),
    ]);
    const after = await listAll({ target: alice });
    const added = after.slice(before.length);
    expect(added.filter((e) => e.action === "session.sign_in" && e.outcome === "success")).toHaveLength(4);
    // The lookup above and the four concurrent reads, each with its own reason.
    expect(
      added
        .filter((e) => e.action === "user.get")
        .map((e) => e.reason)
        .sort(),
    ).toEqual(["audit test lookup", ...Array.from({ length: 4 }, (_, i) => `concurrent read ${i}`)].sort());
    const all = await listAll();
    expect(all.map((e) => Number(e.sequence))).toEqual(all.map((_, i) => i + 1));
    expect((await api.call(AdminService.method.verifyAuditChain, {}, admin)).intact).toBe(true);
  });

  it("verifies the chain, then names an event altered and an event deleted directly in the database, over the RPC and the CLI", async () => {
    const intact = await api.call(AdminService.method.verifyAuditChain, {}, admin);
    expect(intact.intact).toBe(true);
    expect(intact.firstBrokenSequence).toBe(0n);
    const total = (await listAll()).length;
    // Everything before this verification, i.e. all but its own event.
    expect(Number(intact.checkedCount)).toBe(total - 1);
    const cliIntact = await runVerifyCli(server.config);
    expect(cliIntact.stdout).toContain("audit trail intact");
    expect(cliIntact.code).toBe(0);

    // Someone with database access rewrites what happened to Alice's failed sign-in.
    const [failed] = await listAll({ target: `account:${ids.alice}`, action: "session.sign_in_failed" });
    const altered = Number(failed!.sequence);
    await rawExec(server.config, "UPDATE audit_events SET outcome = ? WHERE tenant_id = ? AND sequence = ?", ["success", "default", altered]);
    const broken = await api.call(AdminService.method.verifyAuditChain, {}, admin);
    expect(broken).toMatchObject({ intact: false, firstBrokenSequence: BigInt(altered), checkedCount: BigInt(altered - 1) });
    const cliBroken = await runVerifyCli(server.config);
    expect(cliBroken.code).toBe(1);
    expect(cliBroken.stdout).toContain(`first broken sequence ${altered}:`);
    expect(cliBroken.stdout).toContain("BROKEN");

    // Put it back: intact again. Then delete an event in the middle.
    await rawExec(server.config, "UPDATE audit_events SET outcome = ? WHERE tenant_id = ? AND sequence = ?", [failed!.outcome, "default", altered]);
    expect((await api.call(AdminService.method.verifyAuditChain, {}, admin)).intact).toBe(true);
    const deleted = altered + 3;
    await rawExec(server.config, "DELETE FROM audit_events WHERE tenant_id = ? AND sequence = ?", ["default", deleted]);
    expect(await api.call(AdminService.method.verifyAuditChain, {}, admin)).toMatchObject({ intact: false, firstBrokenSequence: BigInt(deleted) });
    const cliDeleted = await runVerifyCli(server.config);
    expect(cliDeleted.code).toBe(1);
    expect(cliDeleted.stdout).toMatch(new RegExp(`first broken sequence ${deleted}: the event is missing`));

    // The service keeps appending after its chain end whatever was done to the middle.
    expect(await codeOf(signIn(uniqueEmail("after")))).toBe(Code.Unauthenticated);
  });

  it("records a signed-in caller adding a phone or an address as that account, not as anonymous", async () => {
    const dave = (await signUpAndVerify(uniqueEmail("dave"))).accountId;
    const daveAddress = (await api.call(AdminService.method.getUser, { accountId: dave, reason: "audit actor test" }, admin)).account!.email;
    const session = bearer((await signIn(daveAddress)).sessionToken);
    const phone = `+3365${String(Date.now() % 10_000_000).padStart(7, "0")}`;
    await api.call(IdentityService.method.addPhone, { phone, locale: "en" }, session);
    const code = /^([0-9]{6}) /.exec((await server.waitForSms(phone)).body)?.[1] ?? "";
    const wrong = code === "000000" ? "111111" : "000000";
    expect(await codeOf(api.call(IdentityService.method.verifyPhone, { phone, code: wrong }, session))).toBe(Code.InvalidArgument);
    await api.call(IdentityService.method.verifyPhone, { phone, code }, session);
    await api.call(IdentityService.method.signUp, { email: uniqueEmail("dave.second"), password: PASSWORD, locale: "en" }, session);

    const actorOf = async (action: string) => (await listAll({ target: `account:${dave}`, action })).map((e) => ({ actor: e.actor, outcome: e.outcome }));
    const asDave = `account:${dave}`;
    expect(await actorOf("identity.add_phone")).toEqual([{ actor: asDave, outcome: "success" }]);
    expect(await actorOf("identity.verify_phone_failed")).toEqual([{ actor: asDave, outcome: "CODE_INVALID" }]);
    expect(await actorOf("identity.verify_phone")).toEqual([{ actor: asDave, outcome: "success" }]);
    // Dave's own sign-up was anonymous; the address added while signed in is his.
    expect(await actorOf("identity.sign_up")).toEqual([
      { actor: "anonymous", outcome: "success" },
      { actor: asDave, outcome: "success" },
    ]);
    // Filtering by actor finds them.
    expect((await listAll({ actor: asDave })).map((e) => e.action)).toEqual(
      expect.arrayContaining(["identity.add_phone", "identity.verify_phone_failed", "identity.verify_phone", "identity.sign_up"]),
    );
  });
});
