// Reflection and health checked with clients we did not write (buf curl,
// grpc-js), against a real h2c server, so interop bugs cannot hide.
import { execFile } from "node:child_process";
import { createServer, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create, createFileRegistry, fromBinary, toBinary, toJson, type DescFile, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { registerReflection } from "../../src/server/reflection.ts";
import { registerHealth } from "../../src/server/health.ts";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { file_identity_v1_identity_service } from "../../gen/identity/v1/identity_service_pb.js";
import { file_identity_v1_session_service } from "../../gen/identity/v1/session_service_pb.js";
import { file_identity_v1_account_service } from "../../gen/identity/v1/account_service_pb.js";
import { file_identity_v1_admin_service } from "../../gen/identity/v1/admin_service_pb.js";
import { startTestServer } from "../support/server.ts";

const exec = promisify(execFile);
const BUF = join(import.meta.dirname, "../../node_modules/.bin/buf");

const files: DescFile[] = [
  file_identity_v1_identity_service,
  file_identity_v1_session_service,
  file_identity_v1_account_service,
  file_identity_v1_admin_service,
];

let serving = true;
let server: Http2Server;
const sessions = new Set<ServerHttp2Session>();
let base: string;
let grpcClient: grpc.Client;
// buf wants a writable cache dir; keep it out of $HOME.
const bufCache = mkdtempSync(join(tmpdir(), "buf-cache-"));

beforeAll(async () => {
  const routes = (router: ConnectRouter): void => {
    registerReflection(router, files);
    registerHealth(
      router,
      async () => serving,
      files.flatMap((f) => f.services.map((s) => s.typeName)),
    );
  };
  server = createServer(connectNodeAdapter({ routes }));
  // Clients keep HTTP/2 sessions alive; track them so afterAll can end them.
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  grpcClient = new grpc.Client(base.slice("http://".length), grpc.credentials.createInsecure());
});

afterAll(async () => {
  grpcClient?.close();
  for (const s of sessions) s.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(bufCache, { recursive: true, force: true });
});

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await exec(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    env: { ...process.env, BUF_CACHE_DIR: bufCache },
    timeout: 20_000,
  });
  return stdout;
}

function grpcCheck(service: string): Promise<HealthCheckResponse> {
  return new Promise((resolve, reject) => {
    grpcClient.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (req: { service: string }) => Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, req))),
      (buf: Buffer) => fromBinary(HealthCheckResponseSchema, buf),
      { service },
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}

describe("buf curl via server reflection", () => {
  for (const reflectProtocol of ["grpc-v1", "grpc-v1alpha"]) {
    it(`lists methods (${reflectProtocol})`, async () => {
      const out = await bufCurl("--reflect-protocol", reflectProtocol, "--list-methods", base);
      const methods = out.split("\n");
      expect(methods).toContain("identity.v1.SessionService/ValidateSession");
      expect(methods).toContain("identity.v1.IdentityService/SignUp");
      expect(methods).toContain("grpc.health.v1.Health/Check");
      expect(methods).toContain("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
    });

    it(`calls Health/Check with a reflected schema (${reflectProtocol})`, async () => {
      const out = await bufCurl("--reflect-protocol", reflectProtocol, "-d", "{}", `${base}/grpc.health.v1.Health/Check`);
      expect(JSON.parse(out)).toEqual({ status: "SERVING" });
    });
  }
});

describe("grpc-js Health/Check", () => {
  it("reports SERVING for the server and for a registered service", async () => {
    expect((await grpcCheck("")).status).toBe(Status.SERVING);
    expect((await grpcCheck("identity.v1.SessionService")).status).toBe(Status.SERVING);
  });

  it("reports NOT_SERVING when the readiness check fails", async () => {
    serving = false;
    try {
      expect((await grpcCheck("")).status).toBe(Status.NOT_SERVING);
    } finally {
      serving = true;
    }
  });

  it("answers NOT_FOUND for an unknown service", async () => {
    await expect(grpcCheck("nope.Nope")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe("connect client", () => {
  // connect-node's gRPC transport is always HTTP/2 (no httpVersion option).
  const transport = () => createGrpcTransport({ baseUrl: base });

  it("resolves a symbol to its file plus transitive imports, NOT_FOUND otherwise", async () => {
    const client = createClient(ServerReflection, transport());
    async function* requests(): AsyncIterable<MessageInitShape<typeof ServerReflectionRequestSchema>> {
      yield { messageRequest: { case: "fileContainingSymbol", value: "identity.v1.SignInRequest" } };
      yield { messageRequest: { case: "fileContainingSymbol", value: "nope.Nope" } };
    }
    const responses = [];
    for await (const res of client.serverReflectionInfo(requests())) responses.push(res);
    expect(responses).toHaveLength(2);

    const [found, missing] = responses;
    if (found?.messageResponse.case !== "fileDescriptorResponse") throw new Error("expected file descriptors");
    const names = found.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
    expect(names[0]).toBe("identity/v1/session_service.proto");
    expect(names).toEqual(expect.arrayContaining(["identity/v1/common.proto", "google/protobuf/field_mask.proto", "google/protobuf/timestamp.proto"]));

    expect(missing?.messageResponse.case).toBe("errorResponse");
    expect(missing?.messageResponse.value).toMatchObject({ errorCode: grpc.status.NOT_FOUND });
  });

  it("Health/Watch streams the current status and then changes", async () => {
    const client = createClient(Health, transport());
    const abort = new AbortController();
    const seen: Status[] = [];
    try {
      for await (const res of client.watch({ service: "" }, { signal: abort.signal })) {
        seen.push(res.status);
        if (seen.length === 1) serving = false;
        else break;
      }
    } finally {
      abort.abort();
      serving = true;
    }
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });
});

describe("error details resolved by reflection, as grpcurl does", () => {
  it("serves google.rpc.ErrorInfo and BadRequest, so a client decodes ErrorInfo.reason from buf curl's base64", async () => {
    const identity = await startTestServer("embedded");
    const env = { ...process.env, BUF_CACHE_DIR: bufCache };
    try {
      // buf curl prints an error's details as base64: it resolves them only from its own registry.
      const printed = await exec(
        BUF,
        ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", "{}", `${identity.baseUrl}/identity.v1.SessionService/ValidateSession`],
        { env, timeout: 20_000 },
      ).then(
        () => "{}",
        (error: { stderr: string }) => error.stderr,
      );
      const error = JSON.parse(printed) as { code: string; details?: Array<{ type: string; value: string }> };
      expect(error.code).toBe("invalid_argument");

      for (const reflectProtocol of ["v1", "v1alpha"]) {
        // What a generic client (grpcurl) does with them: ask reflection for each type by name.
        const resolved = new Map<string, unknown>();
        for (const detail of error.details ?? []) {
          const answer = JSON.parse(
            (
              await exec(
                BUF,
                [
                  "curl",
                  "--protocol",
                  "grpc",
                  "--http2-prior-knowledge",
                  "-d",
                  JSON.stringify({ fileContainingSymbol: detail.type }),
                  `${identity.baseUrl}/grpc.reflection.${reflectProtocol}.ServerReflection/ServerReflectionInfo`,
                ],
                { env, timeout: 20_000 },
              )
            ).stdout,
          ) as { fileDescriptorResponse?: { fileDescriptorProto: string[] }; errorResponse?: unknown };
          expect(answer.errorResponse, `${reflectProtocol} ${detail.type}`).toBeUndefined();
          const registry = createFileRegistry(
            create(FileDescriptorSetSchema, {
              file: answer
                .fileDescriptorResponse!.fileDescriptorProto.map((b64) => fromBinary(FileDescriptorProtoSchema, Buffer.from(b64, "base64")))
                .reverse(),
            }),
          ); // imports first
          const schema = registry.getMessage(detail.type);
          expect(schema, detail.type).toBeDefined();
          resolved.set(detail.type, toJson(schema!, fromBinary(schema!, Buffer.from(detail.value, "base64"))));
        }
        expect(resolved.get("google.rpc.ErrorInfo"), reflectProtocol).toEqual({ reason: "INVALID_ARGUMENT", domain: "identity.v1" });
        expect(JSON.stringify(resolved.get("google.rpc.BadRequest")), reflectProtocol).toContain("session_token");
      }
    } finally {
      await identity.close();
    }
  });
});
