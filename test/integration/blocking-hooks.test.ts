// Blocking hooks through the running service and a local HTTP hook: a deny
// blocks sign-up (and a session) with the hook's own reason and message; the
// hook's request is signed (checked with the `standardwebhooks` library) and
// carries the identity kind, tenant and request metadata but no address; a
// hook that does not answer in time lets the request through or refuses it as
// the tenant chose.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { Role } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `hook.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface Asked {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A hook endpoint: each path answers as `answers[path]` says (a JSON answer, or a delay before allowing). */
async function startHook() {
  const asked: Asked[] = [];
  const answers = new Map<string, { json?: unknown; delayMs?: number }>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      asked.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      const answer = answers.get(path) ?? { json: { decision: "allow" } };
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer.json ?? { decision: "allow" }));
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    asked,
    answers,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.each(BACKENDS)("blocking hooks on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let hook: Awaited<ReturnType<typeof startHook>>;
  let root: Record<string, string>;

  beforeAll(async () => {
    hook = await startHook();
    // Development mode: the hook is plain http on loopback.
    server = await startTestServer(backend, { env: { DEVELOPMENT_MODE: "true" } });
    api = createCaller("connect-json-h1", server.baseUrl);
    const rootEmail = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email: rootEmail, password: PASSWORD } } });
    root = bearer(signedIn.sessionToken);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
    await hook?.close();
  });

  const tenant = async (name: string) => (await api.call(AdminService.method.createTenant, { name }, root)).tenant!.id;
  const signUp = (tenantId: string, email: string) =>
    api.call(IdentityService.method.signUp, { email, password: PASSWORD }, { "x-tenant-id": tenantId, "user-agent": "hook-test/1" });

  it("a deny blocks sign-up with the hook's reason and message; the hook sees a signed request without the address", async () => {
    const shop = await tenant("Denied");
    const set = await api.call(AdminService.method.setBlockingHook, { point: "before_sign_up", url: hook.url("/deny"), tenantId: shop }, root);
    expect(set.secret).toMatch(/^whsec_/);
    expect(set.hook).toMatchObject({ point: "before_sign_up", timeoutMs: 2000, failOpen: false });
    hook.answers.set("/deny", { json: { decision: "deny", reason: "NETWORK_BLOCKED", message: "Sign-ups from this network are closed." } });

    const email = uniqueEmail("denied");
    const error = await refusal(signUp(shop, email));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("NETWORK_BLOCKED");
    expect(error.rawMessage).toBe("Sign-ups from this network are closed.");
    // Nothing was created: no account, no mail.
    await new Promise((r) => setTimeout(r, 300));
    expect(server.inbox.some((m) => m.envelopeTo.includes(email))).toBe(false);

    const asked = hook.asked.filter((a) => a.path === "/deny");
    expect(asked).toHaveLength(1);
    const payload = new StandardWebhook(set.secret).verify(asked[0]!.body, {
      "webhook-id": String(asked[0]!.headers["webhook-id"]),
      "webhook-timestamp": String(asked[0]!.headers["webhook-timestamp"]),
      "webhook-signature": String(asked[0]!.headers["webhook-signature"]),
    });
    expect(payload).toMatchObject({ type: "before_sign_up", data: { tenant_id: shop, identity_kind: "email", ip: "127.0.0.1", user_agent: "hook-test/1" } });
    expect(asked[0]!.body).not.toContain(email);

    // A guest is a sign-up too: refused the same way, the hook told it is a guest.
    const guest = await refusal(api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } }, { "x-tenant-id": shop }));
    expect(guest.code).toBe(Code.PermissionDenied);
    expect(guest.findDetails(ErrorInfoSchema)[0]?.reason).toBe("NETWORK_BLOCKED");
    expect(JSON.parse(hook.asked.filter((a) => a.path === "/deny").at(-1)!.body).data.identity_kind).toBe("guest");

    // Allowed, the same sign-up goes through.
    hook.answers.set("/deny", { json: { decision: "allow" } });
    await signUp(shop, email);
    await server.waitForMail(email);
  });

  it("a hook that times out lets sign-up through when it fails open, refuses it when it fails closed", async () => {
    const open = await tenant("Open");
    const closed = await tenant("Closed");
    hook.answers.set("/slow", { delayMs: 1500, json: { decision: "deny", reason: "TOO_LATE" } });
    await api.call(
      AdminService.method.setBlockingHook,
      { point: "before_sign_up", url: hook.url("/slow"), timeoutMs: 200, failOpen: true, tenantId: open },
      root,
    );
    await api.call(
      AdminService.method.setBlockingHook,
      { point: "before_sign_up", url: hook.url("/slow"), timeoutMs: 200, failOpen: false, tenantId: closed },
      root,
    );

    const through = uniqueEmail("open");
    const started = Date.now();
    await signUp(open, through);
    expect(Date.now() - started).toBeLessThan(1400); // did not wait for the hook's late answer
    await server.waitForMail(through);

    const refused = await refusal(signUp(closed, uniqueEmail("closed")));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.findDetails(ErrorInfoSchema)[0]?.reason).toBe("HOOK_UNAVAILABLE");

    // A hook that cannot be reached at all follows the same choice.
    await api.call(AdminService.method.setBlockingHook, { point: "before_sign_up", url: "http://127.0.0.1:1/down", timeoutMs: 200, tenantId: closed }, root);
    expect((await refusal(signUp(closed, uniqueEmail("closed")))).code).toBe(Code.Unavailable);
    await api.call(AdminService.method.deleteBlockingHook, { point: "before_sign_up", tenantId: closed }, root);
    await signUp(closed, uniqueEmail("closed-after"));
    expect((await api.call(AdminService.method.listBlockingHooks, { tenantId: closed }, root)).hooks).toEqual([]);
  });

  it("a before_session deny refuses the sign-in with its reason; the hook is told the account", async () => {
    const shop = await tenant("Sessions");
    const email = uniqueEmail("member");
    const created = await api.call(AdminService.method.createUser, { email, password: PASSWORD, role: Role.USER }, { ...root, "x-tenant-id": shop });
    await api.call(AdminService.method.setBlockingHook, { point: "before_session", url: hook.url("/session"), tenantId: shop }, root);
    hook.answers.set("/session", { json: { decision: "deny", reason: "ACCOUNT_SUSPENDED_BY_APP", message: "Your subscription has lapsed." } });
    const error = await refusal(
      api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }, { "x-tenant-id": shop }),
    );
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("ACCOUNT_SUSPENDED_BY_APP");
    expect(error.rawMessage).toBe("Your subscription has lapsed.");
    const asked = hook.asked.filter((a) => a.path === "/session").at(-1)!;
    expect(JSON.parse(asked.body)).toMatchObject({
      type: "before_session",
      data: { tenant_id: shop, account_id: created.account!.id, identity_kind: "email" },
    });

    hook.answers.set("/session", { json: { decision: "allow" } });
    const signedIn = await api.call(
      SessionService.method.signIn,
      { method: { case: "emailPassword", value: { email, password: PASSWORD } } },
      { "x-tenant-id": shop },
    );
    expect(signedIn.sessionToken).not.toBe("");
  });

  it("refuses bad settings naming the field", async () => {
    const shop = await tenant("Bad hooks");
    const badPoint = await refusal(api.call(AdminService.method.setBlockingHook, { point: "after_lunch", url: hook.url("/x"), tenantId: shop }, root));
    expect(badPoint.code).toBe(Code.InvalidArgument);
    expect(badPoint.rawMessage).toContain("point");
    const badTimeout = await refusal(
      api.call(AdminService.method.setBlockingHook, { point: "before_session", url: hook.url("/x"), timeoutMs: 60_000, tenantId: shop }, root),
    );
    expect(badTimeout.rawMessage).toContain("timeout_ms");
    const badUrl = await refusal(api.call(AdminService.method.setBlockingHook, { point: "before_session", url: "not a url", tenantId: shop }, root));
    expect(badUrl.rawMessage).toContain("url");
  });
});
