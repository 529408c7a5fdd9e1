// SSRF: outside development mode, webhooks and blocking hooks may not point at
// loopback, private, link-local or metadata addresses — refused when saved
// (InvalidArgument naming `url`), and refused again at delivery after resolving
// the name, so a name that resolves to 127.0.0.1 (DNS rebinding) gets nothing
// out of it. WEBHOOK_ALLOW_PRIVATE_NETWORKS=true lets operators deliver to
// internal hosts. (Development mode is unaffected: the other webhook suites
// deliver to loopback receivers in it.) The mysql backend runs in production mode.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal, type Caller } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `ssrf.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** A public-looking name that this test's DNS answers with loopback: a rebinding attacker's. */
const REBINDING_HOST = "rebind.attacker.example";

describe.skipIf(!BACKENDS.includes("mysql"))("webhook SSRF guard in production mode", () => {
  const servers: TestServer[] = [];
  const callers: Caller[] = [];
  const resolved: string[] = [];

  async function production(env: Record<string, string> = {}) {
    const server = await startTestServer("mysql", {
      env,
      runtime: {
        webhookPollMs: 50,
        webhookRetry: { baseDelayMs: 60_000, maxDelayMs: 60_000, maxAgeMs: 3_600_000 },
        webhookResolver: async (hostname) => {
          resolved.push(hostname);
          if (hostname === REBINDING_HOST) return [{ address: "127.0.0.1", family: 4 }];
          throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
        },
      },
    });
    servers.push(server);
    const api = createCaller("connect-json-h1", server.baseUrl);
    callers.push(api);
    const email = uniqueEmail("root");
    await server.runtime.bootstrap.createSuperAdmin({ email, password: PASSWORD, promote: false });
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    const root = bearer(signedIn.sessionToken);
    const tenantId = (await api.call(AdminService.method.createTenant, { name: `Ssrf ${seq++}` }, root)).tenant!.id;
    return { server, api, root, tenantId };
  }

  let prod: Awaited<ReturnType<typeof production>>;
  beforeAll(async () => {
    prod = await production();
  });
  afterAll(async () => {
    for (const c of callers) c.close();
    for (const s of servers) await s.close();
  });

  const fieldsOf = async (call: Promise<unknown>) => {
    const error = await refusal(call);
    expect(Code[error.code], error.rawMessage).toBe(Code[Code.InvalidArgument]);
    return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
  };

  it.each([
    "https://127.0.0.1/hook",
    "https://2130706433/hook", // 127.0.0.1 spelled as a number
    "https://10.0.0.8/hook",
    "https://192.168.1.20/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[fd12::1]/hook",
    "https://localhost/hook",
    "https://metadata.google.internal/computeMetadata/v1",
  ])("refuses %s when saved, for webhooks and blocking hooks", async (url) => {
    const { api, root, tenantId } = prod;
    expect(await fieldsOf(api.call(AdminService.method.createWebhook, { url, eventTypes: [], tenantId }, root))).toEqual(["url"]);
    expect(await fieldsOf(api.call(AdminService.method.setBlockingHook, { point: "before_sign_up", url, tenantId }, root))).toEqual(["url"]);
  });

  it("refuses an update to a private address", async () => {
    const { api, root, tenantId } = prod;
    const created = await api.call(AdminService.method.createWebhook, { url: "https://hooks.example.com/in", eventTypes: [], tenantId }, root);
    const fields = await fieldsOf(
      api.call(
        AdminService.method.updateWebhook,
        { webhook: { id: created.webhook!.id, url: "https://10.1.1.1/in" }, updateMask: { paths: ["url"] }, tenantId },
        root,
      ),
    );
    expect(fields.some((f) => f.endsWith("url"))).toBe(true);
    await api.call(AdminService.method.deleteWebhook, { webhookId: created.webhook!.id, tenantId }, root);
  });

  it("a name resolving to loopback is refused at delivery (DNS rebinding), and so is a blocking hook's", async () => {
    const { api, root, tenantId } = prod;
    const hook = await api.call(AdminService.method.createWebhook, { url: `https://${REBINDING_HOST}/in`, eventTypes: ["account.created"], tenantId }, root);
    await api.call(IdentityService.method.signUp, { email: uniqueEmail("person"), password: PASSWORD }, { "x-tenant-id": tenantId });
    const deadline = Date.now() + 20_000;
    let lastError = "";
    while (Date.now() < deadline) {
      const { deliveries } = await api.call(AdminService.method.listWebhookDeliveries, { webhookId: hook.webhook!.id, tenantId }, root);
      lastError = deliveries[0]?.lastError ?? "";
      if (lastError !== "") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(lastError).toBe("PRIVATE_ADDRESS");
    expect(resolved).toContain(REBINDING_HOST);

    // A fail-closed blocking hook at such a name: the sign-up is refused (the hook is never reached).
    await api.call(AdminService.method.setBlockingHook, { point: "before_sign_up", url: `https://${REBINDING_HOST}/gate`, tenantId, failOpen: false }, root);
    const refused = await refusal(api.call(IdentityService.method.signUp, { email: uniqueEmail("gated"), password: PASSWORD }, { "x-tenant-id": tenantId }));
    expect(Code[refused.code]).toBe(Code[Code.Unavailable]);
  });

  it("WEBHOOK_ALLOW_PRIVATE_NETWORKS=true lets an operator deliver to internal hosts", async () => {
    const { api, root, tenantId } = await production({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: "true" });
    const created = await api.call(AdminService.method.createWebhook, { url: "https://10.0.0.8/hook", eventTypes: [], tenantId }, root);
    expect(created.webhook?.url).toBe("https://10.0.0.8/hook");
  });
});
