// The hot path: identity.v1.SessionService/ValidateSession over gRPC, served
// straight from the HTTP/2 stream without connect-node's per-call machinery
// (AbortControllers, async iterators, header objects). Only the framing is
// here: the answer is the domain's validateSession (src/domain/validate-session.ts)
// and the response the handler's validateResponse, so both paths answer alike;
// a cached validation completes synchronously. Anything else — other paths,
// gRPC-Web, Connect, compressed messages — falls through to connect-node.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Http2SecureServer, Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { SessionService, ValidateSessionRequestSchema, ValidateSessionResponseSchema } from "../../gen/identity/v1/session_service_pb.js";
import { invalidArgument } from "../domain/errors.ts";
import { validateSession, type SessionValidationDeps, type ValidatedSession } from "../domain/validate-session.ts";
import { toConnectError } from "../interceptors/errors.ts";
import { procedureName, type Metrics } from "../interceptors/metrics.ts";
import { bearerOf } from "../services/call-context.ts";
import { validateResponse } from "../services/session-service.ts";

/** Largest request message accepted, on every path (connect-node's readMaxBytes too): a 10 KB password is refused by rules, not by size. */
export const READ_MAX_BYTES = 64 * 1024;

const PROCEDURE = procedureName(SessionService.method.validateSession);
export const FAST_PATH = `/${PROCEDURE}`;
const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc+proto" };
const OK_TRAILERS = { "grpc-status": "0" };

function isPlainGrpc(headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  const encoding = headers["grpc-encoding"];
  return (
    headers[":method"] === "POST" && (type === "application/grpc" || type === "application/grpc+proto") && (encoding === undefined || encoding === "identity")
  );
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

export function installFastPath(
  server: Http2Server | Http2SecureServer,
  deps: { validation: SessionValidationDeps; metrics: Metrics; onUnexpected: (error: unknown, procedure: string) => void },
): void {
  // createServer(options, onRequest) attached node's compatibility layer as a
  // 'stream' listener; we take its place and hand it every stream we don't serve.
  const fallThrough = server.listeners("stream") as Array<(...args: unknown[]) => void>;
  server.removeAllListeners("stream");
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (headers[":path"] === FAST_PATH && isPlainGrpc(headers)) return serve(stream, headers.authorization);
    for (const listener of fallThrough) listener.call(server, stream, headers, flags, rawHeaders);
  });

  function fail(stream: ServerHttp2Stream, error: unknown, started: number) {
    const connectError = toConnectError(error, (e) => deps.onUnexpected(e, PROCEDURE));
    const trailers: Record<string, string> = {};
    setTrailerStatus(new Headers(), connectError).forEach((value, key) => (trailers[key] = value));
    deps.metrics.observe(PROCEDURE, connectError, started);
    if (stream.destroyed || stream.closed) return;
    // Trailers-only response: status in the headers frame, stream ended.
    stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
  }

  // The framed answer depends only on the session record, the tenant (its plans)
  // and the account's subscription: a session served from the in-process caches
  // (the same objects each time) is encoded once. Records read anew are new
  // objects, so a changed session, plan or subscription never meets a stale
  // answer; entries go when their session record does.
  const encoded = new WeakMap<ValidatedSession["session"], { tenant: object; subscription: object; body: Buffer }>();

  function succeed(stream: ServerHttp2Stream, valid: ValidatedSession, started: number) {
    deps.metrics.observe(PROCEDURE, undefined, started);
    if (stream.destroyed || stream.closed) return;
    const known = encoded.get(valid.session);
    let body: Buffer;
    if (known && known.tenant === valid.tenant && known.subscription === valid.subscription) body = known.body;
    else {
      body = frame(toBinary(ValidateSessionResponseSchema, validateResponse(valid)));
      encoded.set(valid.session, { tenant: valid.tenant, subscription: valid.subscription, body });
    }
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    stream.end(body);
  }

  function serve(stream: ServerHttp2Stream, authorization: string | undefined) {
    const started = performance.now();
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("error", () => {}); // a client that resets its stream is not our error
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > READ_MAX_BYTES + 5) {
        stream.removeAllListeners("data");
        fail(stream, new ConnectError("message too large", 8), started);
      } else chunks.push(chunk);
    });
    stream.on("end", () => {
      if (size > READ_MAX_BYTES + 5) return;
      let token: string;
      try {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5)
          throw invalidArgument("request", "is not one uncompressed gRPC message");
        token = fromBinary(ValidateSessionRequestSchema, body.subarray(5)).sessionToken;
      } catch (error) {
        return fail(
          stream,
          error instanceof ConnectError || (error as { name?: string }).name === "DomainError" ? error : invalidArgument("request", "cannot be decoded"),
          started,
        );
      }
      let answer: ValidatedSession | Promise<ValidatedSession>;
      try {
        answer = validateSession(deps.validation, token, () => bearerOf(authorization));
      } catch (error) {
        return fail(stream, error, started);
      }
      if (!(answer instanceof Promise)) return succeed(stream, answer, started);
      answer.then(
        (valid) => succeed(stream, valid, started),
        (error) => fail(stream, error, started),
      );
    });
  }
}
