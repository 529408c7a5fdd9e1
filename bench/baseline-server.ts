// The physical-limit baselines for /identity.v1.SessionService/ValidateSession:
// a bare @grpc/grpc-js unary server answering a fixed response, decoding each
// request and encoding each response with protobuf-es like the service; or,
// with BASELINE_KIND=http2, node:http2 alone answering a canned frame.
// Started by bench/run.ts as a child process.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import cluster from "node:cluster";
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import {
  ValidateSessionRequestSchema,
  ValidateSessionResponseSchema,
  type ValidateSessionRequest,
  type ValidateSessionResponse,
} from "../gen/identity/v1/session_service_pb.js";
import { AssuranceLevel, Role } from "../gen/identity/v1/common_pb.js";

// Same shape and size as the service's answer for a live session.
const FIXED = create(ValidateSessionResponseSchema, {
  accountId: randomUUID(),
  tenantId: "default",
  role: Role.USER,
  assuranceLevel: AssuranceLevel.AAL1,
  expireTime: timestampFromMs(Date.now() + 24 * 3_600_000),
  sessionId: randomUUID(),
});

const definition: grpc.ServiceDefinition = {
  ValidateSession: {
    path: "/identity.v1.SessionService/ValidateSession",
    requestStream: false,
    responseStream: false,
    requestSerialize: (message: ValidateSessionRequest) => Buffer.from(toBinary(ValidateSessionRequestSchema, message)),
    requestDeserialize: (bytes: Buffer) => fromBinary(ValidateSessionRequestSchema, bytes),
    responseSerialize: (message: ValidateSessionResponse) => Buffer.from(toBinary(ValidateSessionResponseSchema, message)),
    responseDeserialize: (bytes: Buffer) => fromBinary(ValidateSessionResponseSchema, bytes),
  },
};

// BASELINE_WORKERS > 1: the same server in node:cluster workers sharing BASELINE_PORT,
// the shape the service runs in. Prints "port <n>" once every process listens.
const workers = Number(process.env.BASELINE_WORKERS || 1);
const requestedPort = Number(process.env.BASELINE_PORT || 0);

if (workers > 1 && cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on("message", (message: unknown) => {
      if (message === "listening" && ++listening === workers) process.stdout.write(`port ${requestedPort}\n`);
    });
  }
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM");
    cluster.on("exit", () => Object.keys(cluster.workers ?? {}).length === 0 && process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else if (process.env.BASELINE_KIND === "http2") {
  // The floor of Node itself: node:http2 alone, reading each request to its end
  // and answering one canned gRPC frame (the same bytes the grpc-js baseline
  // encodes) with grpc-status 0 in the trailers — no decoding, no encoding.
  const message = toBinary(ValidateSessionResponseSchema, FIXED);
  const canned = Buffer.allocUnsafe(5 + message.length);
  canned[0] = 0;
  canned.writeUInt32BE(message.length, 1);
  canned.set(message, 5);
  const headers = { ":status": 200, "content-type": "application/grpc+proto" };
  const trailers = { "grpc-status": "0" };
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.on("data", () => {});
    stream.on("end", () => {
      if (stream.destroyed || stream.closed) return;
      stream.respond(headers, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers(trailers));
      stream.end(canned);
    });
  });
  server.listen(requestedPort, "127.0.0.1", () => {
    if (cluster.isWorker) process.send!("listening");
    else process.stdout.write(`port ${(server.address() as { port: number }).port}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const server = new grpc.Server();
  server.addService(definition, {
    ValidateSession(call: grpc.ServerUnaryCall<ValidateSessionRequest, ValidateSessionResponse>, callback: grpc.sendUnaryData<ValidateSessionResponse>) {
      if (call.request.sessionToken === "") return callback({ code: grpc.status.INVALID_ARGUMENT, details: "session_token is required" });
      callback(null, FIXED);
    },
  });
  server.bindAsync(`127.0.0.1:${requestedPort}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) {
      process.stderr.write(`baseline server: ${error.message}\n`);
      process.exit(1);
    }
    if (cluster.isWorker) process.send!("listening");
    else process.stdout.write(`port ${port}\n`);
  });
  const stop = () => {
    setTimeout(() => {
      server.forceShutdown();
      process.exit(0);
    }, 1000).unref();
    server.tryShutdown(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
