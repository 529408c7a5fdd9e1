// Operators and failed messages, through the running service and its real SMTP
// server: a refused recipient fails the message at once; `npm run outbox --
// list-failed` shows it without the address; `requeue` sends it once the
// server accepts; /metrics shows the queue's depth and the failures.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { AdminService, DeliveryFailureClass } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { runOutboxCommand } from "../../src/cli/outbox-command.ts";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { cliEnv, runCli, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";

describe.each(BACKENDS)("failed messages on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  /** Runs an outbox command in this process on the server's runtime. */
  async function outbox(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = "";
    let stderr = "";
    const code = await runOutboxCommand(server.runtime, argv, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
    return { code, stdout, stderr };
  }

  async function until<T>(read: () => Promise<T | undefined>, what: string): Promise<T> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const value = await read();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const failedRow = () => until(async () => (await server.rawRows("outbox")).find((r) => r.status === "failed"), "a failed message");

  async function metric(name: string, labels: string): Promise<number> {
    const body = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const line = body.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
    return line ? Number(line.split(" ").at(-1)) : 0;
  }

  it("a refused recipient fails at once; list-failed shows it without the address; requeue sends it once the server accepts", async () => {
    const email = `refused.${Date.now()}@example.test`;
    const failuresBefore = await metric("identity_delivery_failures_total", 'kind="verify_email",channel="email",class="permanent"');
    server.smtp.refuse(550);
    let id = "";
    try {
      await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
      const row = await failedRow();
      expect(row).toMatchObject({ attempts: 1, last_error_class: "permanent", last_error: "EENVELOPE 550 RCPT TO" });
      id = String(row.id);
      expect(server.smtp.recipientsOffered()).toBe(1);

      // The metrics say so.
      expect(await metric("identity_outbox_messages", 'status="failed"')).toBe(1);
      expect(await metric("identity_delivery_failures_total", 'kind="verify_email",channel="email",class="permanent"')).toBe(failuresBefore + 1);
      expect(await metric("identity_delivery_given_up_total", 'kind="verify_email",channel="email",class="permanent"')).toBe(1);

      const listed = await outbox("list-failed");
      expect(listed.code).toBe(0);
      const lines = listed.stdout.trim().split("\n");
      expect(lines[0]).toBe("id\ttenant\tkind\tattempts\tclass\tlast_error\tcreated\tfailed\tqueued\trequeueable");
      expect(lines.slice(1).map((l) => l.split("\t"))).toEqual([
        [row.id, "default", "verify_email", "1", "permanent", "EENVELOPE 550 RCPT TO", expect.any(String), expect.any(String), expect.any(String), "yes"],
      ]);
      expect(listed.stdout + listed.stderr).not.toContain(email);
      expect((await outbox("list-failed", "--tenant", "no-such-tenant")).stdout.trim().split("\n")).toHaveLength(1);

      // Requeued while still refused: refused again at once, not retried.
      expect((await outbox("requeue", String(row.id))).code).toBe(0);
      await until(async () => (server.smtp.recipientsOffered() === 2 ? true : undefined), "the second refusal");
      await failedRow();
    } finally {
      server.smtp.refuse(null);
    }
    const requeued = await outbox("requeue", "--all");
    expect(requeued).toMatchObject({ code: 0, stdout: "1\n" });
    const mail = await server.waitForMail(email);
    expect(mail.subject).toContain("Confirm your email address");
    await until(async () => ((await server.rawRows("outbox")).every((r) => r.status === "sent") ? true : undefined), "every message sent");
    expect(server.inbox.filter((m) => m.envelopeTo.includes(email))).toHaveLength(1);
    expect(await metric("identity_outbox_messages", 'status="failed"')).toBe(0);
    expect((await outbox("list-failed")).stdout.trim().split("\n")).toHaveLength(1);

    // Each requeue is in the audit trail, by its message id.
    const audit = (await server.rawRows("audit_events")).filter((e) => e.action === "outbox.requeue");
    expect(audit.map((e) => [e.tenant_id, e.target, e.actor])).toEqual([
      ["default", `message:${id}`, "system"],
      ["default", "", "system"],
    ]);
  });

  it("refuses what it cannot do: an unknown id (1), a malformed command (2)", async () => {
    expect(await outbox("requeue", "0197a1b2-0000-7000-8000-000000000000")).toMatchObject({ code: 1, stderr: expect.stringContaining("no failed message") });
    expect(await outbox("requeue", "not-an-id")).toMatchObject({ code: 1 });
    expect((await outbox("requeue")).code).toBe(2);
    expect((await outbox("requeue", "--all", "0197a1b2-0000-7000-8000-000000000000")).code).toBe(2);
    expect((await outbox("list-failed", "--limit", "zero")).code).toBe(2);
    expect((await outbox("list-failed", "--tenant", "a b")).code).toBe(2);
    expect((await outbox("purge")).code).toBe(2);
  });

  it("AdminService lists the tenant's failed messages in pages, without addresses, and RequeueMessage sends one once the server accepts", async () => {
    const rootEmail = `root.${Date.now()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const root = {
      authorization: `Bearer ${(await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } })).sessionToken}`,
    };
    const failedCount = async () => (await server.rawRows("outbox")).filter((r) => r.status === "failed").length;
    const emails = [`first.${Date.now()}@example.test`, `second.${Date.now()}@example.test`];
    server.smtp.refuse(550);
    try {
      for (const email of emails) await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
      await until(async () => ((await failedCount()) === 2 ? true : undefined), "two failed messages");
    } finally {
      server.smtp.refuse(null);
    }

    const first = await api.call(AdminService.method.listFailedMessages, { pageSize: 1 }, root);
    expect(first.messages).toHaveLength(1);
    expect(first.nextPageToken).not.toBe("");
    const second = await api.call(AdminService.method.listFailedMessages, { pageSize: 1, pageToken: first.nextPageToken }, root);
    expect(second.messages).toHaveLength(1);
    expect(second.nextPageToken).toBe("");
    const listed = [...first.messages, ...second.messages];
    expect(new Set(listed.map((m) => m.id)).size).toBe(2);
    for (const m of listed) {
      expect(m).toMatchObject({
        tenantId: "default",
        kind: "verify_email",
        attempts: 1,
        lastErrorClass: DeliveryFailureClass.PERMANENT,
        lastError: "EENVELOPE 550 RCPT TO",
        requeueable: true,
      });
      expect(Number(m.failTime?.seconds)).toBeGreaterThan(0);
    }
    expect(JSON.stringify(listed, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain("@example.test");
    expect((await refusal(api.call(AdminService.method.listFailedMessages, { pageToken: "bm90LWEtdG9rZW4" }, root))).code).toBe(Code.InvalidArgument);

    // Another tenant's admin (here a super admin acting in it) neither sees nor requeues them.
    const elsewhere = { ...root, "x-tenant-id": "elsewhere" };
    expect((await api.call(AdminService.method.listFailedMessages, {}, elsewhere)).messages).toEqual([]);
    const foreign = await refusal(api.call(AdminService.method.requeueMessage, { messageId: listed[0]!.id }, elsewhere));
    expect(foreign.code).toBe(Code.NotFound);
    expect(foreign.rawMessage).toContain("no failed message");
    expect((await refusal(api.call(AdminService.method.requeueMessage, { messageId: "" }, root))).code).toBe(Code.InvalidArgument);
    expect((await refusal(api.call(AdminService.method.requeueMessage, { messageId: "jane@example.test" }, root))).code).toBe(Code.NotFound);

    for (const m of listed) await api.call(AdminService.method.requeueMessage, { messageId: m.id }, root);
    for (const email of emails) await server.waitForMail(email);
    await until(async () => ((await failedCount()) === 0 ? true : undefined), "no failed message");
    expect((await api.call(AdminService.method.listFailedMessages, {}, root)).messages).toEqual([]);
    for (const email of emails) expect(server.inbox.filter((m) => m.envelopeTo.includes(email))).toHaveLength(1);

    // Both calls are audited in the tenant, the requeues by message id; nothing names an address.
    const audit = (await server.rawRows("audit_events")).filter((e) => String(e.action).startsWith("outbox.") && String(e.actor).startsWith("account:"));
    expect(audit.filter((e) => e.action === "outbox.list_failed").length).toBeGreaterThanOrEqual(4);
    expect(
      audit
        .filter((e) => e.action === "outbox.requeue" && e.outcome === "success")
        .map((e) => e.target)
        .sort(),
    ).toEqual(listed.map((m) => `message:${m.id}`).sort());
    const refused = audit.filter((e) => e.action === "outbox.requeue" && e.outcome === "MESSAGE_NOT_FOUND").map((e) => `${e.tenant_id} ${e.target}`);
    expect(refused.sort()).toEqual(["default ", `elsewhere message:${listed[0]!.id}`]);
    expect(JSON.stringify(audit)).not.toContain("@example.test");
  });

  it("runs as an operator runs it: `npm run outbox -- list-failed` in its own process", async () => {
    const run = await runCli("outbox.ts", cliEnv(server.config), ["list-failed", "--json"]);
    expect(run.stderr).toContain("failed message");
    expect(run.code).toBe(0);
  });
});
