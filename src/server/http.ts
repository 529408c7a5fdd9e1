// One port for everything: gRPC (HTTP/2), gRPC-Web and Connect (HTTP/1.1 and
// HTTP/2), plus /healthz, /readyz and /metrics. In plaintext, the first bytes
// of each connection decide: the HTTP/2 preface goes to the h2c server, anything
// else to the HTTP/1.1 server. Under TLS, ALPN decides.
import { cors as connectCors, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { readFileSync } from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import net, { type Socket } from "node:net";
import type { Config } from "../config.ts";
import { file_identity_v1_account_service } from "../../gen/identity/v1/account_service_pb.js";
import { file_identity_v1_admin_service } from "../../gen/identity/v1/admin_service_pb.js";
import { file_identity_v1_identity_service } from "../../gen/identity/v1/identity_service_pb.js";
import { file_identity_v1_session_service } from "../../gen/identity/v1/session_service_pb.js";
import { logUnexpected } from "../interceptors/errors.ts";
import type { Metrics } from "../interceptors/metrics.ts";
import type { Tracer } from "@opentelemetry/api";
import { contextValuesFor } from "../interceptors/request-meta.ts";
import { routerOptions } from "../interceptors/stack.ts";
import { registerIdentityServices } from "../services/routes.ts";
import { installFastPath, READ_MAX_BYTES } from "./fast-path.ts";
import { registerHealth } from "./health.ts";
import type { Logger } from "./logger.ts";
import { registerReflection } from "./reflection.ts";
import { serveUi, UI_PREFIX } from "./ui.ts";
import type { Runtime } from "./wiring.ts";

export const SERVED_FILES = [
  file_identity_v1_identity_service,
  file_identity_v1_session_service,
  file_identity_v1_account_service,
  file_identity_v1_admin_service,
];
const SERVICE_NAMES = SERVED_FILES.flatMap((f) => f.services.map((s) => s.typeName));

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface HttpServer {
  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops accepting, lets in-flight calls finish for up to graceMs, then closes every connection. */
  close(graceMs: number): Promise<void>;
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

export function createHttpServer(deps: { config: Config; runtime: Runtime; log: Logger; metrics: Metrics; tracer?: Tracer }): HttpServer {
  const { config, runtime, log, metrics, tracer } = deps;
  for (const metric of runtime.metrics) metrics.registry.registerMetric(metric);
  const routes = (router: ConnectRouter) => {
    registerIdentityServices(router, runtime.app);
    registerHealth(router, () => runtime.ready(), SERVICE_NAMES);
    registerReflection(router, SERVED_FILES);
  };
  const connectHandler = connectNodeAdapter({
    routes,
    ...routerOptions({ app: runtime.app, metrics, log, tracer }),
    contextValues: contextValuesFor(config.trustedProxies),
    readMaxBytes: READ_MAX_BYTES,
    // Connect-Web callers may omit the Connect-Protocol-Version header.
    requireConnectProtocolHeader: false,
  });

  const corsOrigins = new Set(config.corsOrigins);
  const allowHeaders = [...connectCors.allowedHeaders, "Authorization", "X-Tenant-Id"].join(", ");
  const exposeHeaders = [...connectCors.exposedHeaders, "Retry-After"].join(", ");

  /** Answers CORS; true when the request was a preflight and is finished. */
  function handleCors(req: AnyRequest, res: AnyResponse): boolean {
    const origin = req.headers.origin;
    if (typeof origin !== "string" || !(corsOrigins.has(origin) || corsOrigins.has("*"))) return false;
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Vary", "Origin");
    res.setHeader("Access-Control-Expose-Headers", exposeHeaders);
    if (req.method !== "OPTIONS") return false;
    res.setHeader("Access-Control-Allow-Methods", connectCors.allowedMethods.join(", "));
    res.setHeader("Access-Control-Allow-Headers", allowHeaders);
    res.setHeader("Access-Control-Max-Age", "7200");
    (res as ServerResponse).writeHead(204).end();
    return true;
  }

  function plain(res: AnyResponse, status: number, body: string, type = "text/plain; charset=utf-8") {
    (res as ServerResponse).writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  }

  let shuttingDown = false;
  const onRequest = (req: AnyRequest, res: AnyResponse) => {
    if (handleCors(req, res)) return;
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "GET" && path === "/healthz") return plain(res, 200, "ok\n");
    if (req.method === "GET" && path === "/readyz") {
      if (shuttingDown) return plain(res, 503, "shutting down\n");
      void runtime.ready().then((ok) => plain(res, ok ? 200 : 503, ok ? "ready\n" : "a backend is unavailable\n"));
      return;
    }
    if (req.method === "GET" && path === "/.well-known/jwks.json") {
      // The public keys of access tokens (src/domain/access-tokens.ts). Cached 30 s at most: a new key is published a minute
      // before it signs, and jose-style verifiers refetch on an unknown kid.
      void runtime.app.accessTokens.jwks().then(
        (jwks) => {
          (res as ServerResponse).writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=30" });
          res.end(JSON.stringify(jwks));
        },
        (error: Error) => {
          log.warn({ cause: error.message }, "signing keys could not be read");
          plain(res, 503, "signing keys unavailable\n");
        },
      );
      return;
    }
    if ((req.method === "GET" || req.method === "HEAD") && (path === "/ui" || path.startsWith(UI_PREFIX))) {
      if (path === "/ui") {
        (res as ServerResponse).writeHead(308, { location: UI_PREFIX });
        res.end();
        return;
      }
      void serveUi(path).then((answer) => {
        (res as ServerResponse).writeHead(answer.status, answer.headers);
        if (req.method === "HEAD") res.end();
        else res.end(answer.body);
      });
      return;
    }
    if (req.method === "GET" && path === "/metrics") {
      void metrics.scrape().then(
        (body) => plain(res, 200, body, metrics.registry.contentType),
        (error: Error) => {
          log.warn({ cause: error.message }, "metrics could not be gathered");
          plain(res, 503, "metrics unavailable\n");
        },
      );
      return;
    }
    connectHandler(req as never, res as never);
  };

  const sessions = new Set<Http2Session>();
  const sockets = new Set<Socket>();
  const h2Options = { settings: { maxConcurrentStreams: 1000 } };
  const tls = config.tlsCertFile && config.tlsKeyFile ? { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) } : undefined;
  const h2 = tls ? http2.createSecureServer({ ...h2Options, ...tls, allowHTTP1: true }, onRequest) : http2.createServer(h2Options, onRequest);
  // With tracing on, ValidateSession takes connect-node's path like every RPC, so it
  // gets its span; off, the fast path stays exactly as fast as without tracing.
  if (!tracer) installFastPath(h2, { validation: runtime.app, metrics, onUnexpected: logUnexpected(log) });
  h2.on("session", (session: Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const h1 = tls
    ? undefined
    : http.createServer({ keepAliveTimeout: 5000, headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 }, onRequest);
  // The HTTP/1.1 server is handed connections rather than listening itself; node
  // starts its connection tracking (idle detection, header and request timeouts)
  // on 'listening', so announce it.
  h1?.emit("listening");

  // Plaintext: route each connection by its first bytes.
  const front = tls
    ? undefined
    : net.createServer((socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
        socket.once("error", () => socket.destroy());
        // A connection that never says anything is dropped (slowloris).
        socket.setTimeout(10_000, () => socket.destroy());
        // Read the first chunk, put it back, and hand the socket over. node's HTTP/2
        // session takes the buffered bytes first and then reads the handle itself, so
        // the socket must stay paused; the HTTP/1.1 server reads through the stream.
        socket.once("data", (first: Buffer) => {
          socket.setTimeout(0);
          socket.pause();
          socket.unshift(first);
          const n = Math.min(first.length, HTTP2_PREFACE.length);
          const isH2 = first.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
          if (isH2) h2.emit("connection", socket);
          else {
            h1!.emit("connection", socket);
            socket.resume();
          }
        });
      });
  const listener: net.Server = front ?? (h2 as unknown as net.Server);
  if (tls)
    h2.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });

  return {
    listen() {
      return new Promise((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(config.port, config.host, () => {
          listener.off("error", reject);
          resolve((listener.address() as net.AddressInfo).port);
        });
      });
    },
    async close(graceMs) {
      shuttingDown = true;
      runtime.app.revocationFeed.close(); // revocation streams never finish by themselves
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const session of sessions) session.close(); // GOAWAY: in-flight streams finish
      h1?.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while ((sessions.size > 0 || sockets.size > 0) && Date.now() < deadline) {
        h1?.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 25));
      }
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      h1?.close(); // stops its connection-tracking timer
      await closed;
    },
  };
}
