// Hostile values in every string field of every RPC (issue 9: ids with "@",
// over-long ids and odd Unicode reached Internal in tenant and API-key RPCs).
// For each RPC of the four services, taken from the generated descriptors, each
// string field (and the string fields of its message fields, one level down)
// gets each hostile value — the others plausible ones — as a super admin and as
// a user, over Connect JSON (the protocol that can carry a lone UTF-16
// surrogate). Whatever the answer, it is never Internal or Unknown.
// Then every other field kind, over Connect binary (the protocol that can carry
// what JSON cannot: a timestamp in year 10000, nanos out of range): numbers at
// their extremes, unknown enum values, timestamps and durations out of range,
// large bytes, field masks naming no field, and repeated and map fields with
// 10,000 elements.
import type { DescField, DescMessage, DescMethod } from "@bufbuild/protobuf";
import { create, ScalarType, toBinary } from "@bufbuild/protobuf";
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
      paths.push({
        label: `${f.name}{key}`,
        set: (v) => ({ ...base(f), [f.jsonName]: { [v]: f.mapKind === "scalar" && f.scalar === ScalarType.STRING ? "v" : {} } }),
      });
    } else if (isNested(f)) {
      const inner = f.message;
      const innerBase = (skip?: DescField) =>
        Object.fromEntries(inner.fields.filter((g) => g !== skip && isString(g) && !g.oneof).map((g) => [g.jsonName, plausible(g)]));
      for (const g of inner.fields) {
        if (isString(g)) paths.push({ label: `${f.name}.${g.name}`, set: (v) => ({ ...base(f), [f.jsonName]: { ...innerBase(g), [g.jsonName]: v } }) });
        else if (isStringList(g))
          paths.push({ label: `${f.name}.${g.name}[]`, set: (v) => ({ ...base(f), [f.jsonName]: { ...innerBase(g), [g.jsonName]: [v] } }) });
      }
    }
  }
  return paths;
}

type Init = Record<string, unknown>;
type Hostile = { label: string; set: (value: unknown) => Init; values: ReadonlyArray<[string, unknown]> };

const MANY = 10_000;
const I32: ReadonlyArray<[string, unknown]> = [
  ["-1", -1],
  ["0", 0],
  ["2^31-1", 2_147_483_647],
  ["-2^31", -2_147_483_648],
];
const U32: ReadonlyArray<[string, unknown]> = [
  ["0", 0],
  ["2^32-1", 4_294_967_295],
];
const I64: ReadonlyArray<[string, unknown]> = [
  ["-1", -1n],
  ["2^63-1", 9_223_372_036_854_775_807n],
  ["-2^63", -9_223_372_036_854_775_808n],
];
const U64: ReadonlyArray<[string, unknown]> = [
  ["0", 0n],
  ["2^64-1", 18_446_744_073_709_551_615n],
];
const FLOATS: ReadonlyArray<[string, unknown]> = [
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["-1", -1],
];
const BYTES: ReadonlyArray<[string, unknown]> = [
  ["empty bytes", new Uint8Array(0)],
  ["64 KB of 0xff", new Uint8Array(65_536).fill(255)],
];
const ENUMS: ReadonlyArray<[string, unknown]> = [
  ["99", 99],
  ["-1", -1],
];
const TIMESTAMPS: ReadonlyArray<[string, unknown]> = [
  ["-1 s", { seconds: -1n }],
  ["before year 1", { seconds: -62_135_596_801n }],
  ["year 10000", { seconds: 253_402_300_800n }],
  ["nanos 1e9", { seconds: 0n, nanos: 1_000_000_000 }],
  ["nanos -1", { seconds: 0n, nanos: -1 }],
];
const DURATIONS: ReadonlyArray<[string, unknown]> = [
  ["-1 s", { seconds: -1n }],
  ["10001 years", { seconds: 315_576_000_001n }],
  ["nanos 2e9", { seconds: 0n, nanos: 2_000_000_000 }],
];
const MASKS: ReadonlyArray<[string, unknown]> = [
  ["unknown path", { paths: ["no_such_field"] }],
  ["empty path", { paths: [""] }],
  ["10,000 paths", { paths: Array.from({ length: MANY }, (_, i) => `field_${i}`) }],
];

function scalarValues(scalar: ScalarType): ReadonlyArray<[string, unknown]> {
  switch (scalar) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return I32;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return U32;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return I64;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return U64;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return FLOATS;
    case ScalarType.BOOL:
      return [["true", true]];
    case ScalarType.BYTES:
      return BYTES;
    default:
      return []; // strings: the test above
  }
}

/** One plausible element of a list field, for a list of 10,000. */
function element(f: DescField): unknown {
  if (f.fieldKind !== "list") return undefined;
  if (f.listKind === "enum") return 1;
  if (f.listKind === "message") return {};
  switch (f.scalar) {
    case ScalarType.STRING:
      return "x";
    case ScalarType.BYTES:
      return new Uint8Array([1]);
    case ScalarType.BOOL:
      return true;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1n;
    default:
      return 1;
  }
}

/** What each field of a message may hold that is not a plain string, by kind. */
function hostileValues(f: DescField): ReadonlyArray<[string, unknown]> {
  switch (f.fieldKind) {
    case "scalar":
      return scalarValues(f.scalar);
    case "enum":
      return ENUMS;
    case "list":
      return [[`${MANY} elements`, Array.from({ length: MANY }, () => element(f))]];
    case "map": {
      const value = f.mapKind === "scalar" ? (f.scalar === ScalarType.STRING ? "v" : 1) : f.mapKind === "enum" ? 1 : {};
      return [[`${MANY} entries`, Object.fromEntries(Array.from({ length: MANY }, (_, i) => [`k${i}`, value]))]];
    }
    case "message":
      if (f.message.typeName === "google.protobuf.Timestamp") return TIMESTAMPS;
      if (f.message.typeName === "google.protobuf.Duration") return DURATIONS;
      if (f.message.typeName === "google.protobuf.FieldMask") return MASKS;
      return [];
  }
}

/**
 * A message's plausible strings (create() fills the rest with defaults), with `f` set to `value` (inside its
 * oneof if it has one). `account_id` names a real account, so the value is reached, not a NotFound before it.
 */
function initWith(message: DescMessage, accountId: string, f?: DescField, value?: unknown): Init {
  const init: Init = {};
  for (const g of message.fields)
    if (g !== f && !g.oneof && isString(g))
      init[g.localName] = g.name === "account_id" || (g.name === "id" && message.name === "Account") ? accountId : plausible(g);
  if (f) {
    if (f.oneof) init[f.oneof.localName] = { case: f.localName, value };
    else init[f.localName] = value;
  }
  return init;
}

/** Every non-string field of a request (top level and one message level down), with the values it gets. */
function otherPaths(message: DescMessage, accountId: string): Hostile[] {
  const paths: Hostile[] = [];
  for (const f of message.fields) {
    const values = hostileValues(f);
    if (values.length > 0) paths.push({ label: f.name, set: (v) => initWith(message, accountId, f, v), values });
    if (isNested(f)) {
      for (const g of f.message.fields) {
        const inner = hostileValues(g);
        // An update names the fuzzed field in its mask, so the value is read rather than refused for an empty mask.
        const mask = message.fields.find((m) => m.name === "update_mask");
        const masked = (init: Init) => (mask ? { ...init, [mask.localName]: { paths: [g.name] } } : init);
        if (inner.length > 0)
          paths.push({
            label: `${f.name}.${g.name}`,
            set: (v) => masked(initWith(message, accountId, f, initWith(f.message, accountId, g, v))),
            values: inner,
          });
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
    const res = await createClient(SessionService, transport).signIn(
      { method: { case: "emailPassword", value: { email, password: PASSWORD } } },
      { headers: { "x-forwarded-for": nextIp() } },
    );
    return res.sessionToken;
  }

  /** A fresh signed-in account of the role: an RPC that ends or erases its caller leaves the next one untouched. */
  async function person(role: Role): Promise<string> {
    return (await personWithId(role)).token;
  }

  async function personWithId(role: Role): Promise<{ token: string; id: string }> {
    const email = `fuzz.${role}.${Date.now()}.${seq++}@example.test`;
    const transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" });
    const created = await createClient(AdminService, transport).createUser(
      { email, password: PASSWORD, role },
      { headers: { authorization: `Bearer ${rootToken}` } },
    );
    return { token: await signIn(email), id: created.account!.id };
  }

  /** One Connect JSON call; the error code, or "ok". */
  async function call(method: DescMethod, body: Record<string, unknown>, token: string, headers: Record<string, string> = {}): Promise<string> {
    return send(method, Buffer.from(JSON.stringify(body)), "json", token, headers);
  }

  /** One Connect call of an encoded request (JSON or binary); the error code, or "ok". */
  async function send(method: DescMethod, message: Buffer, codec: "json" | "proto", token: string, headers: Record<string, string> = {}): Promise<string> {
    const streaming = method.methodKind === "server_streaming";
    const payload = streaming ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]) : message;
    if (streaming) payload.writeUInt32BE(message.length, 1);
    const res = await fetch(`${server.baseUrl}/${method.parent.typeName}/${method.name}`, {
      method: "POST",
      headers: {
        "content-type": streaming ? `application/connect+${codec}` : `application/${codec}`,
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
        for (const [name, value] of HOSTILE_TENANT_HEADERS)
          jobs.push({
            path: { label: "x-tenant-id header", set: () => paths[0]!.set(plausibleOf(paths[0]!)) },
            name,
            value: "",
            headers: { "x-tenant-id": value },
          });
        for (let i = 0; i < jobs.length; i += 8) {
          await Promise.all(
            jobs.slice(i, i + 8).map(async ({ path, name, value, headers }) => {
              calls++;
              const code = await call(method, path.set(value), token, headers);
              if (code === "internal" || code === "unknown" || code.startsWith("http 5"))
                failures.push(`${method.parent.name}.${method.name} ${path.label} = ${name} (${who}): ${code}`);
            }),
          );
        }
      }
    }
    expect(calls).toBeGreaterThan(500);
    expect(failures).toEqual([]);
  }, 300_000); // ~25 s alone; the bound is for a loaded machine running the whole suite

  it("no RPC answers Internal or Unknown to extreme numbers, unknown enums, out-of-range timestamps, bytes or 10,000-element lists", async () => {
    const failures: string[] = [];
    let calls = 0;
    for (const method of METHODS) {
      if (otherPaths(method.input, "").length === 0) continue;
      // Fresh callers for every RPC: the fields name the user's own account, which an admin RPC may end or erase.
      const user = await personWithId(Role.USER);
      const paths = otherPaths(method.input, user.id);
      const callers: Array<[string, string]> = [
        ["super admin", await person(Role.SUPER_ADMIN)],
        ["user", user.token],
      ];
      for (const [who, token] of callers) {
        const jobs = paths.flatMap((path) => path.values.map(([name, value]) => ({ path, name, value })));
        for (let i = 0; i < jobs.length; i += 8) {
          await Promise.all(
            jobs.slice(i, i + 8).map(async ({ path, name, value }) => {
              calls++;
              let bytes: Buffer;
              try {
                bytes = Buffer.from(toBinary(method.input, create(method.input, path.set(value) as never)));
              } catch (error) {
                failures.push(`${method.parent.name}.${method.name} ${path.label} = ${name}: cannot encode (${String(error)})`);
                return;
              }
              const code = await send(method, bytes, "proto", token);
              if (code === "internal" || code === "unknown" || code.startsWith("http 5"))
                failures.push(`${method.parent.name}.${method.name} ${path.label} = ${name} (${who}): ${code}`);
            }),
          );
        }
      }
      // Whatever an RPC accepted and kept must read back, over JSON too (which refuses a timestamp outside years 1–9999).
      for (const [reader, body, token] of [
        [AdminService.method.getUser, { accountId: user.id }, callers[0]![1]],
        [AccountService.method.getAccount, {}, user.token],
      ] as const) {
        const code = await call(reader, body, token);
        if (code === "internal" || code === "unknown" || code.startsWith("http 5"))
          failures.push(`${reader.name} after ${method.parent.name}.${method.name}: ${code}`);
      }
    }
    expect(calls).toBeGreaterThan(100);
    expect(failures).toEqual([]);
  }, 120_000);
});
