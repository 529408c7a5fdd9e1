// Hostile values in every string field of every RPC (issue 9: ids with "@",
// over-long ids and odd Unicode reached Internal in tenant and API-key RPCs).
// For each RPC of the four services, taken from the generated descriptors, each
// string field (and the string fields of its message fields, one level down)
// gets each hostile value — the others plausible ones — as a super admin and as
// a user, over Connect JSON (the protocol that can carry a lone UTF-16
// surrogate). Whatever the answer, it is never Internal or Unknown.
import type { DescField, DescMessage, DescMethod } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const SERVICES = [IdentityService, SessionService, AccountService, AdminService];
const METHODS: DescMethod[] = SERVICES.flatMap((s) => s.methods);
/** RPCs that may end their caller's session or account: the next RPC gets fresh callers. */
const ENDS_CALLER = new Set(["SignOut", "DeleteAccount", "ChangePassword", "RevokeSession", "RevokeOtherSessions", "ConfirmEmailChange", "RemoveIdentity"]);

/** What a hostile client types. JSON carries the lone surrogates as they are (binary protobuf would replace them). */
const HOSTILE: ReadonlyArray<[string, string]> = [
  ["empty", ""],
  ["10 KB", "x".repeat(10_240)],
  ["@", "@"],
  ["id@host", "0191f0b2-7a4c-7c3e-9d1a-3b5f2c1e4a77@example.test"],
  ["NUL", "a\u0000b"],
  ["lone high surrogate", "\ud800"],
  ["lone low surrogate", "x\udc00y"],
  ["emoji", "😀👩‍👩‍👧‍👦"],
  ["../", "../../etc/passwd"],
];

const HOSTILE_TENANT_HEADERS: ReadonlyArray<[string, string]> = [
  ["@", "@"],
  ["id@host", "default@example.test"],
  ["../", "../default"],
  ["2 KB", "t".repeat(2048)],
  ["spaces", "  default  "],
];

/** A plausible value for a string field, so the hostile one is what the handler trips on. */
function plausible(field: DescField): string {
  const name = field.name;
  if (name.includes("email")) return `fuzz.${Date.now()}@example.test`;
  if (name.includes("password")) return PASSWORD;
  if (name === "tenant_id") return "default";
  if (name.includes("locale")) return "en";
  if (name.endsWith("_id") || name === "id") return "0191f0b2-7a4c-7c3e-9d1a-3b5f2c1e4a77";
  if (name.includes("token") || name === "code") return "0123456789";
  if (name.includes("time")) return "";
  return "fuzz";
}

const isString = (f: DescField) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING;
const isStringList = (f: DescField) => f.fieldKind === "list" && f.listKind === "scalar" && f.scalar === ScalarType.STRING;
const isNested = (f: DescField): f is DescField & { fieldKind: "message"; message: DescMessage } =>
  f.fieldKind === "message" && !f.message.typeName.startsWith("google.protobuf.");

type Path = { label: string; set: (value: string) => Record<string, unknown>; plausible?: string };
const plausibleOf = (path: Path) => path.plausible ?? "fuzz";

/** Every string field reachable in a request (top level and one message level down), as a request setter. */
function stringPaths(message: DescMessage): Path[] {
  const base = (skip?: DescField): Record<string, unknown> => {
    const body: Record<string, unknown> = {};
    for (const f of message.fields) {
      if (f === skip || f.oneof) continue; // one member of a oneof at a time: the fuzzed one
      if (isString(f)) body[f.jsonName] = plausible(f);
    }
    return body;
  };
  const paths: Path[] = [];
  for (const f of message.fields) {
    if (isString(f)) paths.push({ label: f.name, set: (v) => ({ ...base(f), [f.jsonName]: v }), plausible: plausible(f) });
    else if (isStringList(f)) paths.push({ label: `${f.name}[]`, set: (v) => ({ ...base(f), [f.jsonName]: [v] }) });
    else if (f.fieldKind === "map" && f.mapKey === ScalarType.STRING) {
      paths.push({ label: `${f.name}{key}`, set: (v) => ({ ...base(f), [f.jsonName]: { [v]: f.mapKind === "scalar" && f.scalar === ScalarType.STRING ? "v" : {} } }) });
    } else if (isNested(f)) {
      const inner = f.message;
      const innerBase = (skip?: DescField) => Object.fromEntries(inner.fields.filter((g) => g !== skip && isString(g) && !g.oneof).map((g) => [g.jsonName, plausible(g)]));
      for (const g of inner.fields) {
        if (isString(g)) paths.push({ label: `${f.name}.${g.name}`, set: (v) => ({ ...base(f), [f.jsonName]: { ...innerBase(g), [g.jsonName]: v } }) });
        else if (isStringList(g)) paths.push({ label: `${f.name}.${g.name}[]`, set: (v) => ({ ...base(f), [f.jsonName]: { ...innerBase(g), [g.jsonName]: [v] } }) });
      }
    }
  }
  return paths;
}

describe.each(BACKENDS)("hostile string fields on the %s backend", (backend) => {
  let server: TestServer;
  let rootToken: string;
  let seq = 0;
  let ipSeq = 0;
  // A client IP per call (one trusted proxy): no source's budget hides a deeper path behind ResourceExhausted.
  const nextIp = () => `10.${(ipSeq >> 16) & 255}.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" } });
    const rootEmail = `fuzz.root.${Date.now()}@example.test`;
    await server.runtime.bootstrap.createSuperAdmin({ email: rootEmail, password: PASSWORD, promote: false });
    rootToken = await signIn(rootEmail);
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  async function signIn(email: string): Promise<string> {
    const transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" });
    const res = await createClient(SessionService, transport).signIn({ method: { case: "emailPassword", value: { email, password: PASSWORD } } }, { headers: { "x-forwarded-for": nextIp() } });
    return res.sessionToken;
  }

  /** A fresh signed-in account of the role: an RPC that ends or erases its caller leaves the next one untouched. */
  async function person(role: Role): Promise<string> {
    const email = `fuzz.${role}.${Date.now()}.${seq++}@example.test`;
    const transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" });
    await createClient(AdminService, transport).createUser({ email, password: PASSWORD, role }, { headers: { authorization: `Bearer ${rootToken}` } });
    return signIn(email);
  }

  /** One Connect JSON call; the error code, or "ok". */
  async function call(method: DescMethod, body: Record<string, unknown>, token: string, headers: Record<string, string> = {}): Promise<string> {
    const streaming = method.methodKind === "server_streaming";
    const json = Buffer.from(JSON.stringify(body));
    const payload = streaming ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), json]) : json;
    if (streaming) payload.writeUInt32BE(json.length, 1);
    const res = await fetch(`${server.baseUrl}/${method.parent.typeName}/${method.name}`, {
      method: "POST",
      headers: {
        "content-type": streaming ? "application/connect+json" : "application/json",
        authorization: `Bearer ${token}`,
        "x-forwarded-for": nextIp(),
        ...headers,
      },
      body: payload,
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (!streaming) {
      if (res.status === 200) return "ok";
      try {
        return String((JSON.parse(bytes.toString()) as { code?: string }).code ?? `http ${res.status}`);
      } catch {
        return `http ${res.status}`;
      }
    }
    // The end-of-stream envelope (flag 2) carries the error, if any.
    for (let at = 0; at + 5 <= bytes.length; ) {
      const flags = bytes[at]!;
      const length = bytes.readUInt32BE(at + 1);
      const frame = bytes.subarray(at + 5, at + 5 + length);
      at += 5 + length;
      if (flags & 2) return String((JSON.parse(frame.toString() || "{}") as { error?: { code?: string } }).error?.code ?? "ok");
    }
    return `http ${res.status}`;
  }

  it("no RPC answers Internal or Unknown to any hostile string field, for a super admin or a user", async () => {
    const failures: string[] = [];
    let calls = 0;
    let callers: Array<[string, string]> = [];
    let stale = true;
    for (const method of METHODS) {
      const paths = stringPaths(method.input);
      if (paths.length === 0) continue;
      // Fresh callers after an RPC that may end or erase its caller (one signed in with plausible values).
      if (stale) {
        callers = [
          ["super admin", await person(Role.SUPER_ADMIN)],
          ["user", await person(Role.USER)],
        ];
      }
      stale = ENDS_CALLER.has(method.name);
      for (const [who, token] of callers) {
        // The fields of one RPC in parallel, a few at a time: fast, and still no flood.
        const jobs = paths.flatMap((path) => HOSTILE.map(([name, value]) => ({ path, name, value, headers: {} as Record<string, string> })));
        // The tenant header too (only what a header can carry), with plausible fields.
        for (const [name, value] of HOSTILE_TENANT_HEADERS) jobs.push({ path: { label: "x-tenant-id header", set: () => paths[0]!.set(plausibleOf(paths[0]!)) }, name, value: "", headers: { "x-tenant-id": value } });
        for (let i = 0; i < jobs.length; i += 8) {
          await Promise.all(
            jobs.slice(i, i + 8).map(async ({ path, name, value, headers }) => {
              calls++;
              const code = await call(method, path.set(value), token, headers);
              if (code === "internal" || code === "unknown" || code.startsWith("http 5")) failures.push(`${method.parent.name}.${method.name} ${path.label} = ${name} (${who}): ${code}`);
            }),
          );
        }
      }
    }
    expect(calls).toBeGreaterThan(500);
    expect(failures).toEqual([]);
  }, 120_000);
});
