// The foundation of administration, end to end over a real server on every
// backend: the first super admin is bootstrapped from the command line (once
// as a real child process), signs in, creates a tenant and service API keys;
// a tenant requiring keys for ValidateSession is enforced identically by the
// gRPC fast path (grpc-js) and connect-node (Connect, gRPC-Web); a key of one
// tenant never validates another's sessions; a revoked key is refused at once;
// users, admins, keys and anonymous callers are refused the super admin RPCs
// before anything is looked up; every action lands in the audit trail.
import { spawn } from "node:child_process";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService, ListApiKeysResponseSchema } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { runAdminCommand } from "../../src/cli/admin-command.ts";
import { hashSecret } from "../../src/crypto/keyring.ts";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const ROOT_PASSWORD = "operator's own long passphrase 42";
let seq = 0;
const uniqueEmail = (tag: string) => `admin.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const UNKNOWN_ID = "0197a1b2-0000-7000-8000-000000000000";

/** "ok" or the gRPC code name of a call's outcome. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return Code[ConnectError.from(error).code]!;
  }
}

/** Runs `npx node src/cli/admin.ts …` against the server's database, as an operator would. */
function runCli(server: TestServer, args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const { config } = server;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    DATA_DIR: config.dataDir,
    KEY_ENCRYPTION_KEYS: config.keyEncryptionKeys!.map((k) => `${k.id}:${k.key.toString("base64")}`).join(","),
    BLIND_INDEX_KEY: config.blindIndexKey!.toString("base64"),
    LOG_LEVEL: "error",
    ...(config.mysqlUrl ? { MYSQL_URL: config.mysqlUrl, REDIS_URL: config.redisUrl!, REDIS_KEY_PREFIX: config.redisKeyPrefix } : { DEVELOPMENT_MODE: "true" }),
  };
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["node", "src/cli/admin.ts", ...args], { cwd: process.cwd(), env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe.each(BACKENDS)("administration foundation on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  let rootId: string;
  let root: Record<string, string>;
  let shopId: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  /** The CLI's own function on the server's runtime, with captured output. */
  async function admin(args: string[], stdin = "") {
    let out = "";
    let err = "";
    const code = await runAdminCommand(server.runtime, args, { readStdin: async () => stdin, out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  async function signIn(email: string, password: string, tenant?: string) {
    const headers: Record<string, string> = tenant ? { "x-tenant-id": tenant } : {};
    const res = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password } } }, headers);
    return { token: res.sessionToken, accountId: res.accountId };
  }

  /** A new person in the tenant, verified and signed in. */
  async function person(tag: string, tenant?: string) {
    const email = uniqueEmail(tag);
    const headers: Record<string, string> = tenant ? { "x-tenant-id": tenant } : {};
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" }, headers);
    const verified = await api.call(IdentityService.method.verifyIdentity, {
      token: linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text),
    });
    return { email, token: verified.sessionToken, accountId: verified.accountId };
  }

  describe("bootstrap", () => {
    it("creates the first super admin from the command line (a child process), verified and active, printing its id", async () => {
      const email = uniqueEmail("root");
      const run = await runCli(server, ["create-super-admin", "--email", email, "--password-stdin"], `${ROOT_PASSWORD}\n`);
      expect(run.stderr).toContain("super admin created");
      expect(run.code).toBe(0);
      rootId = run.stdout.trim();
      expect(rootId).toMatch(/^[0-9a-f-]{36}$/);

      const session = await signIn(email, ROOT_PASSWORD);
      expect(session.accountId).toBe(rootId);
      root = bearer(session.token);
      const validated = await api.call(SessionService.method.validateSession, { sessionToken: session.token });
      expect(validated.role).toBe(Role.SUPER_ADMIN);
      expect(validated.tenantId).toBe("default");
      // Sealed the same way as the service's own data: no address in clear.
      expect(JSON.stringify(await server.rawRows("accounts"))).not.toContain(email);

      // Idempotent: the same address again changes nothing, whatever the password.
      const again = await admin(["create-super-admin", "--email", email.toUpperCase(), "--password-stdin"], "a different password entirely 99");
      expect(again).toMatchObject({ code: 0, out: `${rootId}\n` });
      expect(again.err).toContain("already exists; nothing changed");
      expect((await signIn(email, ROOT_PASSWORD)).accountId).toBe(rootId);
    });

    it("refuses to take over an existing account unless told to promote it, then replaces its password", async () => {
      const somebody = await person("squatter");
      const refused = await admin(["create-super-admin", "--email", somebody.email, "--password-stdin"], ROOT_PASSWORD);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain("--promote");
      expect((await api.call(SessionService.method.validateSession, { sessionToken: somebody.token })).role).toBe(Role.USER);

      const promoted = await admin(["create-super-admin", "--email", somebody.email, "--password-stdin", "--promote"], ROOT_PASSWORD);
      expect(promoted).toMatchObject({ code: 0, out: `${somebody.accountId}\n` });
      // Its old sessions ended and its old password no longer works.
      expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: somebody.token }))).toBe(Code.Unauthenticated);
      expect(await codeOf(signIn(somebody.email, PASSWORD))).toBe(Code.Unauthenticated);
      const session = await signIn(somebody.email, ROOT_PASSWORD);
      expect((await api.call(SessionService.method.validateSession, { sessionToken: session.token })).role).toBe(Role.SUPER_ADMIN);
    });

    it("checks its input: a weak password, a missing flag, an unknown command", async () => {
      expect((await admin(["create-super-admin", "--email", uniqueEmail("weak"), "--password-stdin"], "short")).code).toBe(1);
      expect((await admin(["create-super-admin", "--email", uniqueEmail("noflag")])).code).toBe(2);
      expect((await admin(["create-super-admin", "--email", uniqueEmail("x"), "--password", "x"])).code).toBe(2);
      expect((await admin(["frobnicate"])).code).toBe(2);
    });
  });

  describe("tenants", () => {
    it("a super admin creates a tenant with durations and defaults, reads, lists and updates it", async () => {
      const created = await api.call(
        AdminService.method.createTenant,
        { name: "Shop", settings: { passwordMinLength: 10, sessionIdleTimeout: { seconds: 3600n }, defaultLocale: "fr" } },
        root,
      );
      shopId = created.tenant!.id;
      expect(shopId).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.tenant?.settings?.passwordMinLength).toBe(10);
      expect(created.tenant?.settings?.sessionIdleTimeout?.seconds).toBe(3600n);
      expect(created.tenant?.settings?.sessionAbsoluteLifetime?.seconds).toBe(BigInt(30 * 24 * 3600)); // default
      expect(created.tenant?.settings?.signInPerIpLimit).toBe(100); // default

      const got = await api.call(AdminService.method.getTenant, { tenantId: shopId }, root);
      expect(got.tenant).toEqual(created.tenant);

      const updated = await api.call(
        AdminService.method.updateTenant,
        {
          tenant: { id: shopId, name: "Shop & Co", settings: { inviteOnly: true, passwordMinLength: 64 } },
          updateMask: { paths: ["name", "settings.invite_only"] },
        },
        root,
      );
      expect(updated.tenant?.name).toBe("Shop & Co");
      expect(updated.tenant?.settings?.inviteOnly).toBe(true);
      expect(updated.tenant?.settings?.passwordMinLength).toBe(10); // not in the mask

      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await api.call(AdminService.method.listTenants, { pageSize: 1, pageToken }, root);
        seen.push(...page.tenants.map((t) => t.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(seen).toContain("default");
      expect(seen).toContain(shopId);
      expect(new Set(seen).size).toBe(seen.length);
    });

    it("refuses bad settings naming the field, an unknown mask path and an unknown tenant", async () => {
      const violations = async (call: Promise<unknown>) => {
        try {
          await call;
        } catch (error) {
          const e = ConnectError.from(error);
          expect(e.code).toBe(Code.InvalidArgument);
          return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
        }
        throw new Error("expected InvalidArgument");
      };
      expect(await violations(api.call(AdminService.method.createTenant, { name: "", settings: { passwordMinLength: 7 } }, root))).toEqual([
        "name",
        "settings.password_min_length",
      ]);
      expect(
        await violations(
          api.call(
            AdminService.method.updateTenant,
            {
              tenant: { id: shopId, settings: { sessionIdleTimeout: { seconds: 90n * 24n * 3600n } } },
              updateMask: { paths: ["settings.session_idle_timeout"] },
            },
            root,
          ),
        ),
      ).toEqual(["tenant.settings.session_idle_timeout"]); // longer than the absolute lifetime
      expect(
        await violations(
          api.call(
            AdminService.method.updateTenant,
            { tenant: { id: shopId, settings: { linkBaseUrl: "ftp://x" } }, updateMask: { paths: ["settings.link_base_url"] } },
            root,
          ),
        ),
      ).toEqual(["tenant.settings.link_base_url"]);
      expect(
        await violations(
          api.call(AdminService.method.updateTenant, { tenant: { id: shopId }, updateMask: { paths: ["settings.sign_up_per_ip_limit"] } }, root),
        ),
      ).toEqual(["update_mask"]);
      expect(await violations(api.call(AdminService.method.updateTenant, { tenant: { id: shopId } }, root))).toEqual(["update_mask"]);
      expect(await codeOf(api.call(AdminService.method.getTenant, { tenantId: UNKNOWN_ID }, root))).toBe(Code.NotFound);
      expect(await codeOf(api.call(AdminService.method.updateTenant, { tenant: { id: UNKNOWN_ID, name: "x" }, updateMask: { paths: ["name"] } }, root))).toBe(
        Code.NotFound,
      );
      expect((await api.call(AdminService.method.getTenant, { tenantId: shopId }, root)).tenant?.settings?.linkBaseUrl).toBe("");
    });
  });

  describe("API keys and ValidateSession", () => {
    const keys: Record<string, string> = {};
    let keyIds: Record<string, string> = {};
    let shopSession: string;
    let defaultSession: string;

    beforeAll(async () => {
      // The shop admits its own people again for this part.
      await api.call(
        AdminService.method.updateTenant,
        { tenant: { id: shopId, settings: { inviteOnly: false } }, updateMask: { paths: ["settings.invite_only"] } },
        root,
      );
      const make = async (name: string, tenantId: string, permissions: string[]) => {
        const res = await api.call(AdminService.method.createApiKey, { tenantId, name, permissions }, root);
        keys[name] = res.secret;
        keyIds = { ...keyIds, [name]: res.apiKey!.id };
        return res;
      };
      await make("shop-validate", shopId, ["sessions.validate"]);
      await make("shop-read", shopId, ["users.read"]);
      await make("default-validate", "", ["sessions.validate", "users.read"]);
      shopSession = (await person("shopper", shopId)).token;
      defaultSession = (await person("plain")).token;
    });

    it("a key's secret is shown once: it is recognisable, stored hashed, and never listed", async () => {
      expect(keys["shop-validate"]).toMatch(/^idk_[A-Za-z0-9_-]{43}$/);
      const listed = await api.call(AdminService.method.listApiKeys, { tenantId: shopId }, root);
      expect(listed.apiKeys.map((k) => k.name)).toEqual(["shop-validate", "shop-read"]);
      expect(listed.apiKeys[0]).toMatchObject({ tenantId: shopId, permissions: ["sessions.validate"] });
      const json = toJsonString(ListApiKeysResponseSchema, listed);
      const rows = JSON.stringify(await server.rawRows("api_keys"));
      for (const secret of Object.values(keys)) {
        expect(json).not.toContain(secret);
        expect(json).not.toContain(hashSecret(secret));
        expect(rows).not.toContain(secret);
        expect(rows).toContain(hashSecret(secret));
      }
      expect((await api.call(AdminService.method.listApiKeys, {}, root)).apiKeys.map((k) => k.name)).toEqual(["default-validate"]);
      expect(await codeOf(api.call(AdminService.method.createApiKey, { tenantId: UNKNOWN_ID, name: "x", permissions: ["users.read"] }, root))).toBe(
        Code.NotFound,
      );
      expect(await codeOf(api.call(AdminService.method.createApiKey, { tenantId: shopId, name: "x", permissions: ["users.admin"] }, root))).toBe(
        Code.InvalidArgument,
      );
    });

    /** The outcome of validating `session` with `key` (or none) over every protocol: identical everywhere. */
    async function validateEverywhere(session: string, key?: string): Promise<string> {
      const results: string[] = [];
      for (const protocol of PROTOCOLS) {
        const caller = createCaller(protocol, server.baseUrl);
        try {
          results.push(await outcome(caller.call(SessionService.method.validateSession, { sessionToken: session }, key ? bearer(key) : {})));
        } finally {
          caller.close();
        }
      }
      expect(new Set(results).size, `per protocol ${PROTOCOLS.join(", ")}: ${results.join(", ")}`).toBe(1);
      return results[0]!;
    }

    it("validate_requires_api_key: enforced identically over grpc-js (fast path), Connect and gRPC-Web", async () => {
      // Setting off: anyone may validate; the cache has the shop's settings now.
      expect(await validateEverywhere(shopSession)).toBe("ok");
      await api.call(
        AdminService.method.updateTenant,
        { tenant: { id: shopId, settings: { validateRequiresApiKey: true } }, updateMask: { paths: ["settings.validate_requires_api_key"] } },
        root,
      );

      // On at once, although the tenant was cached.
      expect(await validateEverywhere(shopSession)).toBe("Unauthenticated");
      expect(await validateEverywhere(shopSession, shopSession)).toBe("Unauthenticated"); // a session token is no key
      expect(await validateEverywhere(shopSession, `idk_${"A".repeat(43)}`)).toBe("Unauthenticated");
      expect(await validateEverywhere(shopSession, keys["shop-validate"])).toBe("ok");
      expect(await validateEverywhere(shopSession, keys["shop-read"])).toBe("PermissionDenied");
      // A key of another tenant never validates this tenant's sessions.
      expect(await validateEverywhere(shopSession, keys["default-validate"])).toBe("PermissionDenied");
      // An invalid session is refused before any key is looked at.
      expect(await validateEverywhere(`${UNKNOWN_ID}.${"B".repeat(43)}`, keys["shop-validate"])).toBe("Unauthenticated");
      // Tenants without the setting are unaffected.
      expect(await validateEverywhere(defaultSession)).toBe("ok");
      expect(await validateEverywhere(defaultSession, keys["shop-validate"])).toBe("ok");
    });

    it("a revoked key is refused at once, on every path, though it was just cached", async () => {
      expect(await validateEverywhere(shopSession, keys["shop-validate"])).toBe("ok");
      await api.call(AdminService.method.revokeApiKey, { apiKeyId: keyIds["shop-validate"] }, root);
      expect(await validateEverywhere(shopSession, keys["shop-validate"])).toBe("Unauthenticated");
      const listed = await api.call(AdminService.method.listApiKeys, { tenantId: shopId }, root);
      expect(listed.apiKeys.find((k) => k.id === keyIds["shop-validate"])?.revokeTime).toBeDefined();
      await api.call(AdminService.method.revokeApiKey, { apiKeyId: keyIds["shop-validate"] }, root); // idempotent
      expect(await codeOf(api.call(AdminService.method.revokeApiKey, { apiKeyId: UNKNOWN_ID }, root))).toBe(Code.NotFound);
      expect(await codeOf(api.call(AdminService.method.revokeApiKey, { apiKeyId: "nope" }, root))).toBe(Code.NotFound);
    });
  });

  describe("who may call", () => {
    let user: Record<string, string>;
    let shopAdmin: { headers: Record<string, string>; accountId: string };
    let key: Record<string, string>;

    beforeAll(async () => {
      user = bearer((await person("user")).token);
      const admin = await person("shop-admin", shopId);
      await server.runtime.durable.accounts.setRole({ tenantId: shopId, accountId: admin.accountId, role: Role.ADMIN, at: Date.now() });
      shopAdmin = { headers: bearer((await signIn(admin.email, PASSWORD, shopId)).token), accountId: admin.accountId };
      key = bearer(
        (await api.call(AdminService.method.createApiKey, { name: "all", permissions: ["sessions.validate", "users.read", "users.write", "audit.read"] }, root))
          .secret,
      );
    });

    /** Every tenant and API key RPC, against a tenant that exists or not (permission comes before existence). */
    function everyRpc(headers: Record<string, string>, tenantId: string) {
      return {
        CreateTenant: api.call(AdminService.method.createTenant, { name: "Nope" }, headers),
        GetTenant: api.call(AdminService.method.getTenant, { tenantId }, headers),
        ListTenants: api.call(AdminService.method.listTenants, {}, headers),
        UpdateTenant: api.call(AdminService.method.updateTenant, { tenant: { id: tenantId, name: "Nope" }, updateMask: { paths: ["name"] } }, headers),
        CreateApiKey: api.call(AdminService.method.createApiKey, { tenantId, name: "nope", permissions: ["users.read"] }, headers),
        ListApiKeys: api.call(AdminService.method.listApiKeys, { tenantId }, headers),
        RevokeApiKey: api.call(AdminService.method.revokeApiKey, { apiKeyId: UNKNOWN_ID }, headers),
      };
    }
    async function outcomes(headers: Record<string, string>, tenantId: string) {
      const entries = await Promise.all(Object.entries(everyRpc(headers, tenantId)).map(async ([rpc, call]) => [rpc, await outcome(call)] as const));
      return Object.fromEntries(entries);
    }
    const all = (code: string) => ({
      CreateTenant: code,
      GetTenant: code,
      ListTenants: code,
      UpdateTenant: code,
      CreateApiKey: code,
      ListApiKeys: code,
      RevokeApiKey: code,
    });

    it("anonymous → Unauthenticated; a bad token → Unauthenticated", async () => {
      expect(await outcomes({}, shopId)).toEqual(all("Unauthenticated"));
      expect(await outcomes(bearer(`idk_${"Z".repeat(43)}`), shopId)).toEqual(all("Unauthenticated"));
    });

    it("a user, an API key with every permission → PermissionDenied, whether or not the tenant exists", async () => {
      expect(await outcomes(user, "default")).toEqual(all("PermissionDenied"));
      expect(await outcomes(user, UNKNOWN_ID)).toEqual(all("PermissionDenied"));
      expect(await outcomes(key, "default")).toEqual(all("PermissionDenied"));
      expect(await outcomes(key, UNKNOWN_ID)).toEqual(all("PermissionDenied"));
    });

    it("an API key is no person: calls acting for one are PermissionDenied (a bad key Unauthenticated)", async () => {
      expect(await outcome(api.call(AccountService.method.getAccount, {}, key))).toBe("PermissionDenied");
      expect(await outcome(api.call(AccountService.method.getAccount, {}, bearer(`idk_${"Z".repeat(43)}`)))).toBe("Unauthenticated");
    });

    it("an admin reads its own tenant only, and nothing else", async () => {
      expect(await outcomes(shopAdmin.headers, shopId)).toEqual({ ...all("PermissionDenied"), GetTenant: "ok" });
      expect(await outcome(api.call(AdminService.method.getTenant, {}, shopAdmin.headers))).toBe("ok"); // empty = its own
      expect(await outcomes(shopAdmin.headers, "default")).toEqual(all("PermissionDenied"));
      expect(await outcomes(shopAdmin.headers, UNKNOWN_ID)).toEqual(all("PermissionDenied"));
      expect(await outcome(api.call(AdminService.method.getTenant, {}, { ...shopAdmin.headers, "x-tenant-id": "default" }))).toBe("PermissionDenied");
    });

    it("a demotion counts at once, though the admin's session was issued before it", async () => {
      await server.runtime.durable.accounts.setRole({ tenantId: shopId, accountId: shopAdmin.accountId, role: Role.USER, at: Date.now() });
      expect(await outcome(api.call(AdminService.method.getTenant, {}, shopAdmin.headers))).toBe("PermissionDenied");
    });

    it("a super admin acts on any tenant by naming it, in the field or the x-tenant-id header", async () => {
      expect(await outcome(api.call(AdminService.method.getTenant, {}, { ...root, "x-tenant-id": shopId }))).toBe("ok");
      expect((await api.call(AdminService.method.getTenant, {}, { ...root, "x-tenant-id": shopId })).tenant?.id).toBe(shopId);
      expect(await outcome(api.call(AdminService.method.getTenant, {}, { ...root, "x-tenant-id": "bad id!" }))).toBe("InvalidArgument");
    });
  });

  it("every action is in the audit trail of the tenant acted on, with its actor and outcome", async () => {
    const events = (await server.runtime.app.audit.list({ tenantId: shopId, pageSize: 500, pageToken: "" })).events;
    const actions = events.filter((e) => e.actor === `account:${rootId}`).map((e) => `${e.action} ${e.outcome}`);
    expect(actions[0]).toBe("tenant.create success"); // the tenant's chain starts with its creation
    expect(actions).toEqual(
      expect.arrayContaining([
        "tenant.update success",
        "tenant.update INVALID_ARGUMENT",
        "tenant.get success",
        "api_key.create success",
        "api_key.list success",
        "api_key.revoke success",
      ]),
    );
    const created = events.find((e) => e.action === "api_key.create")!;
    expect(created.target).toMatch(/^api_key:[0-9a-f-]{36}$/);
    expect(created.ip).toBe("127.0.0.1");
    const platform = (await server.runtime.app.audit.list({ tenantId: "default", pageSize: 500, pageToken: "" })).events;
    expect(platform.map((e) => e.action)).toEqual(expect.arrayContaining(["admin.super_admin_created", "admin.super_admin_promoted", "tenant.get"]));
    expect((await server.runtime.app.audit.verify()).intact).toBe(true);
    // The child process's bootstrap is recorded too, by the system.
    expect(platform.find((e) => e.action === "admin.super_admin_created")).toMatchObject({ actor: "system", target: `account:${rootId}` });
  });
});
