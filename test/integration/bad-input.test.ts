// Bad input over the wire, on a real server: every malformed field is refused
// with InvalidArgument (never Internal) and a google.rpc.BadRequest naming the
// request field, over Connect JSON, gRPC-Web and gRPC; a body that is not even
// JSON is refused by the framework the same way. Nothing of it reaches the
// database, and the server keeps serving afterwards.
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { IdentityService, SignUpRequestSchema } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { refusal } from "../support/clients.ts";

const STRONG = "correct horse battery staple";
let seq = 0;
const freshEmail = (tag: string) => `bad.${tag}.${Date.now()}.${seq++}@example.test`;

/** One unary call through a connect-es transport (keeps error details, unlike the grpc-js caller). */
function call<I extends DescMessage, O extends DescMessage>(transport: Transport, method: DescMethodUnary<I, O>, input: MessageInitShape<I>): Promise<MessageShape<O>> {
  const client = createClient(method.parent, transport) as unknown as Record<string, (i: unknown) => Promise<MessageShape<O>>>;
  return client[method.localName]!(input);
}

/** google.rpc.Status, decoded by hand so the check does not rely on connect-es's own parser. */
function decodeStatus(bytes: Uint8Array): { code: number; message: string; details: Array<MessageShape<typeof AnySchema>> } {
  const reader = new BinaryReader(bytes);
  const status = { code: 0, message: "", details: [] as Array<MessageShape<typeof AnySchema>> };
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1) status.code = reader.int32();
    else if (field === 2) status.message = reader.string();
    else if (field === 3) status.details.push(fromBinary(AnySchema, reader.bytes()));
    else reader.skip(wireType);
  }
  return status;
}

interface Case {
  name: string;
  run(transport: Transport): Promise<unknown>;
  field: string;
  reason?: string;
}

const CASES: Case[] = [
  { name: "SignUp with a malformed email", field: "email", run: (t) => call(t, IdentityService.method.signUp, { email: "not an email@", password: STRONG }) },
  { name: "SignUp with an empty password", field: "password", reason: "PASSWORD_REQUIRED", run: (t) => call(t, IdentityService.method.signUp, { email: freshEmail("empty"), password: "" }) },
  {
    name: "SignUp with a 10 KB password",
    field: "password",
    reason: "PASSWORD_TOO_LONG",
    run: (t) => call(t, IdentityService.method.signUp, { email: freshEmail("long"), password: "tr0ub4dor&3 ".repeat(1000).slice(0, 10 * 1024) }),
  },
  { name: "SignUp with a common password", field: "password", reason: "PASSWORD_COMMON", run: (t) => call(t, IdentityService.method.signUp, { email: freshEmail("common"), password: "password1234" }) },
  { name: "SignUp with an unknown locale", field: "locale", run: (t) => call(t, IdentityService.method.signUp, { email: freshEmail("locale"), password: STRONG, locale: "xx" }) },
  {
    name: "SignIn with a malformed email",
    field: "email_password.email",
    run: (t) => call(t, SessionService.method.signIn, { method: { case: "emailPassword", value: { email: "no-at-sign.example.test", password: STRONG } } }),
  },
  { name: "SignIn without any method", field: "method", run: (t) => call(t, SessionService.method.signIn, {}) },
  { name: "ValidateSession with an empty token", field: "session_token", run: (t) => call(t, SessionService.method.validateSession, { sessionToken: "" }) },
];

describe.each(BACKENDS)("bad input on the %s backend", (backend) => {
  let server: TestServer;
  const before: Record<string, number> = {};
  const TABLES = ["accounts", "identities", "outbox"];

  beforeAll(async () => {
    server = await startTestServer(backend);
    for (const table of TABLES) before[table] = (await server.rawRows(table)).length;
  });
  afterAll(async () => {
    await server?.close();
  });

  const transports: Array<[string, () => Transport]> = [
    ["Connect JSON over HTTP/1.1", () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" })],
    ["gRPC over h2c (connect-node)", () => createGrpcTransport({ baseUrl: server.baseUrl })],
  ];

  describe.each(transports)("over %s", (_name, transport) => {
    it.each(CASES)("$name → InvalidArgument naming $field", async ({ run, field, reason }) => {
      const error = await refusal(run(transport()));
      expect(error.code).toBe(Code.InvalidArgument);
      const [badRequest] = error.findDetails(BadRequestSchema);
      expect(badRequest?.fieldViolations).toHaveLength(1);
      expect(badRequest?.fieldViolations[0]?.field).toBe(field);
      expect(badRequest?.fieldViolations[0]?.description).not.toBe("");
      expect(error.rawMessage).toBe(`${field} ${badRequest?.fieldViolations[0]?.description}`);
      const [info] = error.findDetails(ErrorInfoSchema);
      expect(info?.domain).toBe("identity.v1");
      if (reason) expect(info?.reason).toBe(reason);
    });
  });

  it("refuses a Connect body that is not JSON with InvalidArgument, not Internal", async () => {
    const post = (body: string, contentType = "application/json") =>
      fetch(`${server.baseUrl}/identity.v1.IdentityService/SignUp`, { method: "POST", headers: { "content-type": contentType }, body });
    for (const body of ['{"email":', "", "[]", '{"email": 5}']) {
      const res = await post(body);
      expect(res.status, body).toBe(400);
      const json = (await res.json()) as { code: string; message: string };
      expect(json.code, body).toBe("invalid_argument");
      expect(json.message, body).toMatch(/cannot decode/);
    }
  });

  // KNOWN BUG (reported, not fixed here): a Connect request whose binary body is not a valid
  // protobuf message answers 500 {"code":"internal","message":"parse binary: premature EOF"}.
  // connect-es parses unary Connect bodies before any interceptor runs (so errorInterceptor in
  // src/server/errors.ts never sees it) and maps binary parse failures to Internal, while it maps
  // JSON parse failures to InvalidArgument. Over gRPC the connect-node handler answers INTERNAL
  // the same way, whereas the ValidateSession fast path answers INVALID_ARGUMENT.
  // `it.fails` keeps this visible: it starts failing once the server answers InvalidArgument.
  it.fails("refuses a Connect body that is not a protobuf message with InvalidArgument, not Internal", async () => {
    const res = await fetch(`${server.baseUrl}/identity.v1.IdentityService/SignUp`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array([0x0a, 0x05, 0x61]), // field 1, length 5, then only one byte
    });
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    expect(res.status).toBe(400);
  });

  it("answers a bad email over grpc-js with INVALID_ARGUMENT and the BadRequest in grpc-status-details-bin", async () => {
    const client = new grpc.Client(new URL(server.baseUrl).host, grpc.credentials.createInsecure());
    try {
      const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
        client.makeUnaryRequest(
          "/identity.v1.IdentityService/SignUp",
          (input: MessageInitShape<typeof SignUpRequestSchema>) => Buffer.from(toBinary(SignUpRequestSchema, create(SignUpRequestSchema, input))),
          (bytes: Buffer) => bytes,
          { email: "@example.test", password: STRONG },
          (err) => (err ? resolve(err) : reject(new Error("expected the call to be refused"))),
        );
      });
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      const [bin] = error.metadata.get("grpc-status-details-bin");
      expect(bin).toBeInstanceOf(Buffer);
      const status = decodeStatus(bin as Buffer);
      expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.message).toBe("email is not a valid email address");
      const any = status.details.find((d) => d.typeUrl === "type.googleapis.com/google.rpc.BadRequest");
      expect(any).toBeDefined();
      const badRequest = fromBinary(BadRequestSchema, any!.value);
      expect(badRequest.fieldViolations.map((v) => v.field)).toEqual(["email"]);
      // Note: grpc-js shows error.details as "email%3A is not a valid email address": connect-es
      // percent-encodes grpc-message with encodeURIComponent and grpc-js decodes it with decodeURI,
      // which leaves reserved characters (":" here) encoded. The Status in details-bin is exact.
    } finally {
      client.close();
    }
  });

  it("wrote no row for any of it", async () => {
    for (const table of TABLES) expect((await server.rawRows(table)).length, table).toBe(before[table]);
  });

  it("still serves afterwards: /healthz, /readyz and a real SignUp", async () => {
    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect((await health.text()).trim()).toBe("ok");
    expect((await fetch(`${server.baseUrl}/readyz`)).status).toBe(200);
    const transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" });
    const email = freshEmail("good");
    await call(transport, IdentityService.method.signUp, { email, password: STRONG, locale: "fr" });
    expect((await server.rawRows("accounts")).length).toBe(before.accounts! + 1);
    expect((await server.rawRows("identities")).length).toBe(before.identities! + 1);
    await server.waitForMail(email, (m) => m.text.includes("verify-email?token="));
  });
});
