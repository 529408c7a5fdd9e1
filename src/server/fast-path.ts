// The hot path: identity.v1.SessionService/ValidateSession over gRPC, served
// straight from the HTTP/2 stream without connect-node's per-call machinery
// (AbortControllers, async iterators, header objects). It decodes and encodes
// with protobuf-es and answers from the in-process session cache when it can,
// so a cached validation completes synchronously. A tenant requiring an API key
// for ValidateSession is enforced by the same check as the handler's
// (authorizeValidate), which costs one cached lookup when the tenant does not.
// Anything else — other paths, gRPC-Web, Connect, compressed messages — falls
// through to connect-node, whose handler (src/services/session-service.ts)
// answers identically.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Http2SecureServer, Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { ValidateSessionRequestSchema, ValidateSessionResponseSchema } from "../../gen/identity/v1/session_service_pb.js";
import { invalidArgument } from "../domain/errors.ts";
import type { ValidSession } from "../domain/sessions.ts";
import type { App } from "../services/app.ts";
import { authorizeValidate } from "../services/authorize.ts";
import { validateResponse } from "../services/session-service.ts";
import { toConnectError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

export const FAST_PATH = "/identity.v1.SessionService/ValidateSession";
const PROCEDURE = "identity.v1.SessionService/ValidateSession";
/** The same limit as connect-node's readMaxBytes (READ_MAX_BYTES in http.ts), so both paths refuse alike. */
const MAX_MESSAGE_BYTES = 64 * 1024;
const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc+proto" };
const OK_TRAILERS = { "grpc-status": "0" };

function isPlainGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  const encoding = headers["grpc-encoding"];
  return headers[":method"] === "POST" && (type === "application/grpc" || type === "application/grpc+proto") && (encoding === undefined || encoding === "identity");
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export function installFastPath(server: Http2Server | Http2SecureServer, deps: { app: App; metrics: Metrics; log: Logger }): void {
  // createServer(options, onRequest) attached node's compatibility layer as a
  // 'stream' listener; we take its place and hand it every stream we don't serve.
  const fallThrough = server.listeners("stream") as Array<(...args: unknown[]) => void>;
  server.removeAllListeners("stream");
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (headers[":path"] === FAST_PATH && isPlainGrpc(headers)) return serve(stream, headers.authorization);
    for (const listener of fallThrough) listener.call(server, stream, headers, flags, rawHeaders);
  });

  function fail(stream: ServerHttp2Stream, error: unknown, started: number) {
    const connectError = toConnectError(error, (e) => deps.log.error({ err: e, procedure: PROCEDURE }, "unexpected error"));
    const trailers: Record<string, string> = {};
    setTrailerStatus(new Headers(), connectError).forEach((value, key) => (trailers[key] = value));
    deps.metrics.observe(PROCEDURE, String(connectError.code), (performance.now() - started) / 1000);
    if (stream.destroyed || stream.closed) return;
    // Trailers-only response: status in the headers frame, stream ended.
    stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
  }

  function succeed(stream: ServerHttp2Stream, valid: ValidSession, started: number) {
    deps.metrics.observe(PROCEDURE, "ok", (performance.now() - started) / 1000);
    if (stream.destroyed || stream.closed) return;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    stream.end(frame(toBinary(ValidateSessionResponseSchema, validateResponse(valid.session))));
  }

  /** Answers once the caller is allowed to validate this session (synchronously when nothing needs a lookup). */
  function answer(stream: ServerHttp2Stream, valid: ValidSession, authorization: string | undefined, started: number) {
    let pending: Promise<void> | undefined;
    try {
      pending = authorizeValidate(deps.app, valid.session, authorization);
    } catch (error) {
      return fail(stream, error, started);
    }
    if (pending === undefined) return succeed(stream, valid, started);
    pending.then(
      () => succeed(stream, valid, started),
      (error) => fail(stream, error, started),
    );
  }

  function serve(stream: ServerHttp2Stream, authorization: string | undefined) {
    const started = performance.now();
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("error", () => {}); // a client that resets its stream is not our error
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_MESSAGE_BYTES + 5) {
        stream.removeAllListeners("data");
        fail(stream, new ConnectError("message too large", 8), started);
      } else chunks.push(chunk);
    });
    stream.on("end", () => {
      if (size > MAX_MESSAGE_BYTES + 5) return;
      let token: string;
      try {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) throw invalidArgument("request", "is not one uncompressed gRPC message");
        token = fromBinary(ValidateSessionRequestSchema, body.subarray(5)).sessionToken;
      } catch (error) {
        return fail(stream, error instanceof ConnectError || (error as { name?: string }).name === "DomainError" ? error : invalidArgument("request", "cannot be decoded"), started);
      }
      if (token === "") return fail(stream, invalidArgument("session_token", "is required"), started);
      const valid = deps.app.sessions.validate(token);
      if (!(valid instanceof Promise)) return answer(stream, valid, authorization, started);
      valid.then(
        (valid) => answer(stream, valid, authorization, started),
        (error) => fail(stream, error, started),
      );
    });
  }
}
