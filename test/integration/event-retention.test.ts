// Event retention: the retention job deletes a tenant's domain events past
// EVENT_RETENTION_DAYS (30 by default) as a prefix of its stream, never one a
// webhook delivery still needs (pending or failed); a pull consumer whose
// cursor is older than what was deleted gets FailedPrecondition CURSOR_EXPIRED
// rather than a stream that silently skips events.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const DAY = 86_400_000;
let seq = 0;
const uniqueEmail = (tag: string) => `event-retention.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe.each(BACKENDS)("event retention on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let receiver: Server;
  let receiverUrl = "";
  const state = { down: false };
  let clockOffset = 0;
  const now = () => Date.now() + clockOffset;

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(state.down ? 503 : 204).end());
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    server = await startTestServer(backend, {
      // The receiver is plain http on loopback.
      env: { DEVELOPMENT_MODE: "true" },
      runtime: { now, purgeIntervalMs: 0, webhookPollMs: 50, webhookRetry: { baseDelayMs: 3_600_000, maxDelayMs: 3_600_000, maxAgeMs: 365 * DAY } },
    });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
  });

  it("deletes delivered events past 30 days as a prefix, keeps what a delivery needs, and refuses an expired cursor", async () => {
    const rootEmail = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const signInRoot = async () =>
      bearer(
        (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } })).sessionToken,
      );
    let root = await signInRoot();
    const tenantId = (await api.call(AdminService.method.createTenant, { name: `Retained ${seq++}` }, root)).tenant!.id;
    const inTenant = { "x-tenant-id": tenantId };
    const hook = await api.call(AdminService.method.createWebhook, { url: `${receiverUrl}/in`, eventTypes: ["account.created"], tenantId }, root);
    const key = (await api.call(AdminService.method.createApiKey, { tenantId, name: "reader", permissions: ["events.read"] }, root)).secret;
    const client = createClient(AdminService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    const read = async (cursor: string) => {
      const got: Array<{ type: string; cursor: string; accountId: string }> = [];
      for await (const m of client.streamEvents({ cursor }, { headers: bearer(key) }))
        got.push({ type: m.event!.type, cursor: m.cursor, accountId: String(m.event!.data?.account_id ?? "") });
      return got;
    };
    const deliveries = async () => (await api.call(AdminService.method.listWebhookDeliveries, { webhookId: hook.webhook!.id, tenantId }, root)).deliveries;
    /** The deliveries once `ready` holds for them. */
    const settled = async (ready: (list: Awaited<ReturnType<typeof deliveries>>) => boolean) => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const list = await deliveries();
        if (ready(list)) return list;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("deliveries did not settle");
    };

    // Day 0: a first person, delivered.
    const first = uniqueEmail("first");
    await api.call(IdentityService.method.signUp, { email: first, password: PASSWORD }, inTenant);
    await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(first)).text) }, inTenant);
    expect((await settled((l) => l.length === 1 && l[0]!.status === "delivered")).map((d) => d.status)).toEqual(["delivered"]);
    // account.created, identity.verified, account.verified, session.created — once numbered.
    let early = await read("");
    for (const deadline = Date.now() + 20_000; early.length < 4 && Date.now() < deadline; early = await read("")) await new Promise((r) => setTimeout(r, 50));
    expect(early.map((e) => e.type)).toEqual(["account.created", "identity.verified", "account.verified", "session.created"]);

    // Day 1: the endpoint is down; a second person's account.created stays undelivered.
    clockOffset = 1 * DAY;
    root = await signInRoot(); // an admin session does not last a day idle
    state.down = true;
    const second = uniqueEmail("second");
    await api.call(IdentityService.method.signUp, { email: second, password: PASSWORD }, inTenant);
    await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(second)).text) }, inTenant);
    const list = await settled((l) => l.length === 2 && l[0]!.attempts > 0);
    expect(list[0]!.status).toBe("pending");
    const secondCreated = (await read(early.at(-1)!.cursor)).find((e) => e.type === "account.created")!;
    expect(secondCreated).toBeDefined();

    // Day 40: the first person's events are past 30 days and delivered — deleted; the second's
    // account.created is still needed by its delivery, so it and everything after it stay.
    clockOffset = 40 * DAY;
    root = await signInRoot(); // the old session expired meanwhile
    const run = await server.runtime.retention.run(now());
    expect(run.events).toBeGreaterThanOrEqual(early.length); // the root's own events in the default tenant go too
    const left = await read("");
    expect(left[0]).toEqual(secondCreated);
    expect(left.some((e) => early.some((old) => old.cursor === e.cursor))).toBe(false);

    // A consumer whose cursor is older than what was deleted is told so, with a reason.
    const expired = await refusal(read(early[0]!.cursor));
    expect(Code[expired.code]).toBe(Code[Code.FailedPrecondition]);
    expect(expired.findDetails(ErrorInfoSchema)[0]?.reason).toBe("CURSOR_EXPIRED");
    // A cursor at the last deleted event lost nothing: it reads on.
    expect((await read(early.at(-1)!.cursor))[0]).toEqual(secondCreated);

    // Once delivered (the endpoint is back), the rest goes too: it is past its 30 days.
    state.down = false;
    clockOffset += 2 * 3_600_000; // its next retry is due
    root = await signInRoot();
    expect((await settled((l) => l.length === 1 && l[0]!.status === "delivered")).map((d) => d.status)).toEqual(["delivered"]); // the first one went with its event
    const deadline = Date.now() + 20_000;
    while ((await deliveries()).some((d) => d.status !== "delivered") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await server.runtime.retention.run(now())).events).toBeGreaterThanOrEqual(left.length);
    expect(await read("")).toEqual([]);
    expect((await deliveries()).length).toBe(0);
  });
});
