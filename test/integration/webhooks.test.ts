// Events and webhooks through the running service: a local HTTP receiver
// verifies every delivery with the `standardwebhooks` library (a verifier
// nobody here wrote), sees each event kind once and in order, gets everything
// after being down for a while, and sees nothing of another tenant; an erased
// person's pending deliveries are purged; the pull stream resumes from a cursor
// across a restart of the service with nothing lost or repeated.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { Role } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const NEW_PASSWORD = "another horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `hooks.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
}

/** A webhook receiver: records what it accepts, answers 503 while `down`. */
async function startReceiver() {
  const received: Delivery[] = [];
  const state = { down: false, refused: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (state.down) {
        state.refused++;
        res.writeHead(503).end();
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      received.push({ path: req.url ?? "", headers: req.headers, body, payload: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    received,
    state,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until<T>(read: () => T | undefined | Promise<T | undefined>, what: string, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(BACKENDS)("events and webhooks on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let root: Record<string, string>;

  const inTenant = (tenantId: string, headers: Record<string, string>) => ({ ...headers, "x-tenant-id": tenantId });
  const rootEmail = uniqueEmail("root");
  async function signInRoot() {
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } });
    root = bearer(signedIn.sessionToken);
  }

  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startTestServer(backend, {
      // Development mode: the receiver is plain http on loopback.
      env: { DEVELOPMENT_MODE: "true" },
      runtime: { webhookPollMs: 50, webhookRetry: { baseDelayMs: 100, maxDelayMs: 300, maxAgeMs: 24 * 3_600_000 } },
    });
    api = createCaller("connect-json-h1", server.baseUrl);
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    await signInRoot();
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await receiver?.close();
  });

  async function tenant(name: string): Promise<string> {
    return (await api.call(AdminService.method.createTenant, { name }, root)).tenant!.id;
  }

  /** Signs up in the tenant and verifies through the mailed link; the session of the verification. */
  async function verifiedUser(tenantId: string, tag: string) {
    const email = uniqueEmail(tag);
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD }, { "x-tenant-id": tenantId });
    const mail = await server.waitForMail(email);
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) }, { "x-tenant-id": tenantId });
    return { email, accountId: verified.accountId, token: verified.sessionToken };
  }

  function verify(secret: string, delivery: Delivery) {
    // Throws unless the signature, id and timestamp are what Standard Webhooks requires.
    return new StandardWebhook(secret).verify(delivery.body, {
      "webhook-id": String(delivery.headers["webhook-id"]),
      "webhook-timestamp": String(delivery.headers["webhook-timestamp"]),
      "webhook-signature": String(delivery.headers["webhook-signature"]),
    });
  }

  it("delivers each kind once, in order, signed per Standard Webhooks, and nothing of another tenant", async () => {
    const shop = await tenant("Shop");
    const other = await tenant("Other");
    const created = await api.call(AdminService.method.createWebhook, { url: receiver.url("/shop"), eventTypes: [], tenantId: shop }, root);
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(created.webhook).toMatchObject({ tenantId: shop, url: receiver.url("/shop"), eventTypes: [] });
    const otherHook = await api.call(
      AdminService.method.createWebhook,
      { url: receiver.url("/other"), eventTypes: ["account.created"], tenantId: other },
      root,
    );

    // Someone in the other tenant: its webhook sees them, the shop's does not.
    const stranger = await verifiedUser(other, "stranger");

    const user = await verifiedUser(shop, "shop-user"); // account.created, identity.verified, account.verified, session.created
    const session = bearer(user.token);
    await api.call(AccountService.method.updateAccount, { account: { displayName: "Ada" }, updateMask: { paths: ["display_name"] } }, session);
    await api.call(AccountService.method.updateConsents, { consents: [{ purpose: "newsletter", version: "1", granted: true }] }, session);
    await api.call(IdentityService.method.changePassword, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, session);
    await api.call(SessionService.method.signOut, {}, session);
    const target = { accountId: user.accountId, reason: "test" };
    await api.call(AdminService.method.setUserRole, { ...target, role: Role.ADMIN }, inTenant(shop, root));
    await api.call(AdminService.method.setSubscription, { ...target, subscription: { plan: "pro" } }, inTenant(shop, root));
    await api.call(AdminService.method.deactivateUser, target, inTenant(shop, root));
    await api.call(AdminService.method.deactivateUser, target, inTenant(shop, root)); // a retry changes nothing: no event
    await api.call(AdminService.method.activateUser, target, inTenant(shop, root));

    const expected = [
      "account.created",
      "identity.verified",
      "account.verified",
      "session.created",
      "account.updated",
      "consent.changed",
      "password.changed",
      "session.revoked",
      "account.role_changed",
      "account.subscription_changed",
      "account.deactivated",
      "account.activated",
    ];
    const shopDeliveries = () => receiver.received.filter((d) => d.path === "/shop");
    await until(() => shopDeliveries().length >= expected.length, "the shop's deliveries");
    await new Promise((r) => setTimeout(r, 300)); // nothing more arrives
    const deliveries = shopDeliveries();
    expect(deliveries.map((d) => d.payload.type)).toEqual(expected);
    for (const delivery of deliveries) {
      const verified = verify(created.secret, delivery) as Delivery["payload"];
      expect(verified.data).toMatchObject({ account_id: user.accountId, tenant_id: shop });
      expect(Date.parse(verified.timestamp)).not.toBeNaN();
      expect(delivery.body).not.toContain(user.email); // ids and kinds, never the address
    }
    expect(new Set(deliveries.map((d) => d.headers["webhook-id"])).size).toBe(expected.length);
    expect(deliveries[0]!.payload.data).toMatchObject({ identity_kind: "email" });
    expect(deliveries[8]!.payload.data).toMatchObject({ role: "ADMIN", previous_role: "USER" });
    // A signature made with another secret is refused by the verifier.
    expect(() => verify(otherHook.secret, deliveries[0]!)).toThrow();

    // The other tenant's webhook got its own sign-up only (it subscribed to account.created).
    const others = receiver.received.filter((d) => d.path === "/other");
    expect(others.map((d) => [d.payload.type, d.payload.data.account_id])).toEqual([["account.created", stranger.accountId]]);
    verify(otherHook.secret, others[0]!);

    // Deliveries are listed with their outcome.
    const listed = await api.call(AdminService.method.listWebhookDeliveries, { webhookId: created.webhook!.id, tenantId: shop }, root);
    expect(listed.deliveries).toHaveLength(expected.length);
    expect(listed.deliveries.every((d) => d.status === "delivered" && d.attempts === 1)).toBe(true);
    expect(listed.deliveries.map((d) => d.eventType).reverse()).toEqual(expected);
  });

  it("an endpoint down for a while gets everything afterwards, in order, once; a delivery can be requeued", async () => {
    const shop = await tenant("Down");
    const hook = await api.call(
      AdminService.method.createWebhook,
      { url: receiver.url("/down"), eventTypes: ["account.created", "session.created"], tenantId: shop },
      root,
    );
    receiver.state.down = true;
    const refusedBefore = receiver.state.refused;
    const users = [await verifiedUser(shop, "down-1"), await verifiedUser(shop, "down-2")];
    await until(() => receiver.state.refused >= refusedBefore + 3, "refused attempts");
    const pending = await until(async () => {
      const page = await api.call(AdminService.method.listWebhookDeliveries, { webhookId: hook.webhook!.id, tenantId: shop, status: "pending" }, root);
      return page.deliveries.length === 4 ? page : undefined;
    }, "four pending deliveries");
    expect(pending.deliveries.some((d) => d.attempts > 0 && d.lastError === "HTTP_503")).toBe(true);
    receiver.state.down = false;
    const mine = () => receiver.received.filter((d) => d.path === "/down");
    await until(() => mine().length >= 4, "the deliveries after the outage");
    await new Promise((r) => setTimeout(r, 300));
    const got = mine();
    expect(got).toHaveLength(4);
    for (const user of users) {
      expect(got.filter((d) => d.payload.data.account_id === user.accountId).map((d) => d.payload.type)).toEqual(["account.created", "session.created"]);
    }
    for (const d of got) verify(hook.secret, d);

    // A requeue sends it again, under the same webhook-id (receivers deduplicate by it).
    const all = await api.call(AdminService.method.listWebhookDeliveries, { webhookId: hook.webhook!.id, tenantId: shop }, root);
    const first = all.deliveries.at(-1)!;
    await api.call(AdminService.method.requeueWebhookDelivery, { webhookId: hook.webhook!.id, deliveryId: first.id, tenantId: shop }, root);
    await until(() => mine().length >= 5, "the requeued delivery");
    expect(mine()[4]!.headers["webhook-id"]).toBe(first.eventId);

    // Deleting the webhook stops it; its deliveries go with it.
    await api.call(AdminService.method.deleteWebhook, { webhookId: hook.webhook!.id, tenantId: shop }, root);
    expect((await refusal(api.call(AdminService.method.listWebhookDeliveries, { webhookId: hook.webhook!.id, tenantId: shop }, root))).code).toBe(
      Code.NotFound,
    );
    expect((await server.rawRows("webhook_deliveries")).filter((r) => r.webhook_id === hook.webhook!.id)).toEqual([]);
  });

  it("erasing a person purges the deliveries about them; only account.deleted (their id) goes out", async () => {
    const shop = await tenant("Erase");
    const hook = await api.call(AdminService.method.createWebhook, { url: receiver.url("/erase"), eventTypes: [], tenantId: shop }, root);
    receiver.state.down = true;
    const user = await verifiedUser(shop, "erased");
    await until(async () => (await server.rawRows("webhook_deliveries")).filter((r) => r.account_id === user.accountId).length >= 4, "queued deliveries");
    await api.call(AdminService.method.deleteUser, { accountId: user.accountId, reason: "asked" }, inTenant(shop, root));
    const left = await until(async () => {
      const rows = (await server.rawRows("events")).filter((r) => r.account_id === user.accountId);
      return rows.length === 1 ? rows : undefined;
    }, "the events about the person to be purged");
    expect(left.map((r) => r.type)).toEqual(["account.deleted"]);
    // A POST already on its way when the erasure committed may still land (docs/webhooks.md): let it meet the closed door.
    await new Promise((r) => setTimeout(r, 500));
    receiver.state.down = false;
    const mine = () => receiver.received.filter((d) => d.path === "/erase");
    await until(() => mine().length >= 1, "account.deleted");
    await new Promise((r) => setTimeout(r, 300));
    expect(mine().map((d) => d.payload)).toEqual([
      { type: "account.deleted", timestamp: expect.any(String), data: { account_id: user.accountId, tenant_id: shop } },
    ]);
    verify(hook.secret, mine()[0]!);
  });

  it("refuses bad webhooks with the field named, and people who are not admins", async () => {
    const shop = await tenant("Bad");
    const bad = await refusal(api.call(AdminService.method.createWebhook, { url: "ftp://example.test/x", tenantId: shop }, root));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toContain("url");
    const badType = await refusal(api.call(AdminService.method.createWebhook, { url: receiver.url("/x"), eventTypes: ["account.nope"], tenantId: shop }, root));
    expect(badType.code).toBe(Code.InvalidArgument);
    expect(badType.rawMessage).toContain("event_types[0]");
    const user = await verifiedUser(shop, "plain");
    expect((await refusal(api.call(AdminService.method.createWebhook, { url: receiver.url("/x") }, bearer(user.token)))).code).toBe(Code.PermissionDenied);
  });

  it("the pull stream resumes from a cursor after the service restarts: nothing lost, nothing repeated", async () => {
    const shop = await tenant("Pull");
    const key = (await api.call(AdminService.method.createApiKey, { tenantId: shop, name: "follower", permissions: ["events.read"] }, root)).secret;
    const follow = async (baseUrl: string, cursor: string, count: number) => {
      const client = createClient(AdminService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      const controller = new AbortController();
      const got: Array<{ id: string; type: string; cursor: string; kind: unknown }> = [];
      try {
        for await (const message of client.streamEvents({ cursor, follow: true }, { headers: bearer(key), signal: controller.signal })) {
          got.push({ id: message.event!.id, type: message.event!.type, cursor: message.cursor, kind: message.event!.data?.identity_kind });
          if (got.length === count) break;
        }
      } finally {
        controller.abort();
      }
      return got;
    };
    const first = await verifiedUser(shop, "pull-1"); // four events
    const before = await follow(server.baseUrl, "", 4);
    expect(before.map((e) => e.type)).toEqual(["account.created", "identity.verified", "account.verified", "session.created"]);

    // More happens while nobody follows, then the service restarts.
    await api.call(SessionService.method.signOut, {}, bearer(first.token));
    await verifiedUser(shop, "pull-2");
    await server.restart();
    api.close();
    api = createCaller("connect-json-h1", server.baseUrl);
    await signInRoot(); // the embedded session store lives in the process

    const after = await follow(server.baseUrl, before.at(-1)!.cursor, 5);
    expect(after.map((e) => e.type)).toEqual(["session.revoked", "account.created", "identity.verified", "account.verified", "session.created"]);
    const ids = [...before, ...after].map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // From the start again: the same events, in the same order.
    const again = await follow(server.baseUrl, "", 9);
    expect(again.map((e) => e.id)).toEqual(ids);
    // Without follow, a catch-up read ends once it has sent what there is.
    const caughtUp: string[] = [];
    const reader = createClient(AdminService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    for await (const message of reader.streamEvents({ cursor: before.at(-1)!.cursor }, { headers: bearer(key) })) caughtUp.push(message.event!.id);
    expect(caughtUp).toEqual(after.map((e) => e.id));

    // A guest's sign-in is an account too: created with a guest identity, and its session.
    const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, { "x-tenant-id": shop });
    const guestEvents = await follow(server.baseUrl, after.at(-1)!.cursor, 2);
    expect(guestEvents.map((e) => ({ type: e.type, kind: e.kind }))).toEqual([
      { type: "account.created", kind: "guest" },
      { type: "session.created", kind: undefined },
    ]);
    expect(guest.accountId).not.toBe("");

    // A key without events.read, and a malformed cursor, are refused.
    const other = (await api.call(AdminService.method.createApiKey, { tenantId: shop, name: "reader", permissions: ["users.read"] }, root)).secret;
    const client = createClient(AdminService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    const drain = async (cursor: string, token: string) => {
      for await (const _ of client.streamEvents({ cursor }, { headers: bearer(token) })) break;
    };
    expect((await refusal(drain("", other))).code).toBe(Code.PermissionDenied);
    expect((await refusal(drain("abc", key))).code).toBe(Code.InvalidArgument);
  });
});
