// The published client's session validator (packages/client/src/validator.ts)
// against a real server: it answers from its cache, and a revocation reaches
// every connected validator through SessionService/WatchRevocations within 1 s;
// with its stream cut (test/support/tcp-proxy.ts) it trusts its cache only for
// its short TTL, asks ValidateSession instead, and recovers by itself.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { createSessionValidator, type SessionValidator, sessionInterceptor, validatedSessionKey } from "../../packages/client/src/validator.ts";
import { errorReason } from "../../packages/client/src/errors.ts";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { BACKENDS, REDIS_URL } from "../support/backends.ts";
import { createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;

/** A connection that opened the revocation stream (Connect over HTTP/1.1: the path is in clear). */
const watchStream = (clientBytes: string) => clientBytes.includes("/identity.v1.SessionService/WatchRevocations");

/** Resolves with how long `validator` kept accepting `token` (polled every 10 ms, up to 5 s); only a refusal counts. */
async function acceptedFor(validator: SessionValidator, token: string, since: number): Promise<number> {
  while (Date.now() - since < 5000) {
    try {
      await validator.validate(token);
    } catch (error) {
      expect(errorReason(error)).toBe("SESSION_INVALID");
      return Date.now() - since;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return Infinity;
}

describe.each(BACKENDS)("session validator (%s)", (backend) => {
  let server: TestServer;
  let caller: Caller;
  let apiKey: string;
  let proxy: TcpProxy;
  const validators: SessionValidator[] = [];

  beforeAll(async () => {
    server = await startTestServer(backend);
    caller = createCaller("grpc-js", server.baseUrl);
    ({ secret: apiKey } = await server.runtime.app.apiKeys.create({
      tenantId: DEFAULT_TENANT_ID,
      name: "validator",
      permissions: ["sessions.validate"],
      createdBy: "test",
    }));
    proxy = await startTcpProxy({ host: "127.0.0.1", port: server.port });
  });
  afterAll(async () => {
    for (const v of validators) v.close();
    caller?.close();
    await proxy?.close();
    await server?.close();
  });

  function validator(options: Partial<Parameters<typeof createSessionValidator>[0]> = {}): SessionValidator {
    const v = createSessionValidator({ baseUrl: server.baseUrl, apiKey, maxReconnectDelayMs: 300, ...options });
    validators.push(v);
    return v;
  }

  async function signedIn(): Promise<string> {
    const email = `validator.${Date.now()}.${seq++}@example.test`;
    await caller.call(IdentityService.method.signUp, { email, password: PASSWORD });
    const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
    return (await caller.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) })).sessionToken;
  }

  const signOut = (token: string) => caller.call(SessionService.method.signOut, {}, { authorization: `Bearer ${token}` });

  it("a sign-out reaches two validators (gRPC and Connect) within 1 s, and they answered from their caches before", async () => {
    const overGrpc = validator();
    const overConnect = validator({ protocol: "connect" });
    await expect.poll(() => [overGrpc.state, overConnect.state], { timeout: 5000 }).toStrictEqual(["live", "live"]);
    const token = await signedIn();
    const first = await overGrpc.validate(token);
    expect(first.tenantId).toBe(DEFAULT_TENANT_ID);
    expect(first.accountId).toBe(token.split(".")[0]);
    await overConnect.validate(token);
    expect([overGrpc.size, overConnect.size]).toStrictEqual([1, 1]);
    // From the cache: no network call, so thousands per millisecond-scale window.
    const started = performance.now();
    for (let i = 0; i < 10_000; i++) await overGrpc.validate(token);
    expect(performance.now() - started).toBeLessThan(500);

    await signOut(token);
    const signedOut = Date.now();
    const [a, b] = await Promise.all([acceptedFor(overGrpc, token, signedOut), acceptedFor(overConnect, token, signedOut)]);
    expect(a).toBeLessThan(1000);
    expect(b).toBeLessThan(1000);
  });

  it("account- and tenant-wide invalidations drop what the validator holds of them", async () => {
    const v = validator();
    await expect.poll(() => v.state, { timeout: 5000 }).toBe("live");
    const [one, two] = [await signedIn(), await signedIn()];
    await v.validate(one);
    await v.validate(two);
    expect(v.size).toBe(2);
    await server.runtime.ephemeral.invalidation.publish([{ kind: "account", accountId: one.split(".")[0]! }]);
    await expect.poll(() => v.size, { timeout: 1000, interval: 5 }).toBe(1);
    await server.runtime.ephemeral.invalidation.publish([{ kind: "tenant", tenantId: "some-other-tenant" }]);
    await new Promise((r) => setTimeout(r, 100));
    expect(v.size).toBe(1); // another tenant's settings are not streamed to this key
    await server.runtime.ephemeral.invalidation.publish([{ kind: "tenant", tenantId: DEFAULT_TENANT_ID }]);
    await expect.poll(() => v.size, { timeout: 1000, interval: 5 }).toBe(0);
  });

  it("with its stream cut: trusts its cache for the short TTL only, then asks ValidateSession; reconnects and is live again", async () => {
    const fallbackTtlMs = 400;
    const states: string[] = [];
    const v = validator({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      protocol: "connect",
      httpVersion: "1.1",
      fallbackTtlMs,
      onStateChange: (s) => states.push(s),
    });
    await expect.poll(() => v.state, { timeout: 5000 }).toBe("live");
    const cached = await signedIn();
    await v.validate(cached);

    // Cut: the stream's connection is reset and every new attempt is held (no byte gets through).
    proxy.stall(watchStream);
    proxy.reset(watchStream);
    try {
      await expect.poll(() => v.state, { timeout: 2000, interval: 5 }).toBe("down");
      // Signed out while the validator cannot hear it: the cached answer holds for fallbackTtlMs at most…
      await signOut(cached);
      const signedOut = Date.now();
      const stale = await acceptedFor(v, cached, signedOut);
      expect(stale).toBeLessThanOrEqual(fallbackTtlMs + 200);
      // …and meanwhile every other check is a ValidateSession call (through the proxy, on another connection).
      const fresh = await signedIn();
      expect((await v.validate(fresh)).accountId).toBe(fresh.split(".")[0]);
      await signOut(fresh);
      const refused = await v.validate(fresh).then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
      // Cached for the short TTL only: refused once it passed.
      if (refused === undefined) expect(await acceptedFor(v, fresh, Date.now())).toBeLessThanOrEqual(fallbackTtlMs + 200);
      else expect(refused.code).toBe(Code.Unauthenticated);
      expect(v.state).toBe("down");
    } finally {
      proxy.resume();
    }
    // Recovery: the held attempt goes through (or the next one does), and revocations arrive again.
    await expect.poll(() => v.state, { timeout: 5000, interval: 10 }).toBe("live");
    expect(states).toStrictEqual(["live", "down", "live"]);
    const later = await signedIn();
    await v.validate(later);
    await signOut(later);
    expect(await acceptedFor(v, later, Date.now())).toBeLessThan(1000);
  });

  it("a revoked API key ends its stream; a session token or a key without sessions.validate cannot open one", async () => {
    const { key, secret } = await server.runtime.app.apiKeys.create({
      tenantId: DEFAULT_TENANT_ID,
      name: "short-lived",
      permissions: ["sessions.validate"],
      createdBy: "test",
    });
    const v = validator({ apiKey: secret });
    await expect.poll(() => v.state, { timeout: 5000 }).toBe("live");
    await server.runtime.app.apiKeys.revoke(key.id);
    await expect.poll(() => v.state, { timeout: 2000, interval: 5 }).toBe("down");

    const { secret: reader } = await server.runtime.app.apiKeys.create({
      tenantId: DEFAULT_TENANT_ID,
      name: "reader",
      permissions: ["users.read"],
      createdBy: "test",
    });
    const session = await signedIn();
    for (const [credential, code, reason] of [
      [reader, Code.PermissionDenied, "PERMISSION_REQUIRED"],
      [session, Code.PermissionDenied, "API_KEY_REQUIRED"],
      [secret, Code.Unauthenticated, "API_KEY_INVALID"],
    ] as const) {
      const error = await openStream(credential);
      expect([error.code, errorReason(error)]).toStrictEqual([code, reason]);
    }
  });

  it("as a connect interceptor on another service's server: the validated session reaches the handler, a refused one never does", async () => {
    const v = validator();
    await v.live();
    // A service of our own, served with connect-node (here: SessionService.ListSessions answering who called).
    const handler = connectNodeAdapter({
      routes: (router) =>
        router.service(SessionService, {
          listSessions: (_req, ctx) => ({ sessions: [{ id: ctx.values.get(validatedSessionKey)!.sessionId }] }),
        }),
      interceptors: [sessionInterceptor(v)],
    });
    const service = http2.createServer(handler);
    await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
    try {
      const client = createClient(SessionService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${(service.address() as AddressInfo).port}` }));
      const token = await signedIn();
      const { sessionId } = await caller.call(SessionService.method.validateSession, { sessionToken: token });
      const answered = await client.listSessions({}, { headers: { authorization: `Bearer ${token}` } });
      expect(answered.sessions.map((x) => x.id)).toStrictEqual([sessionId]);
      expect((await openCall(() => client.listSessions({}))).code).toBe(Code.Unauthenticated);
      await signOut(token);
      await expect.poll(() => v.size, { timeout: 1000, interval: 5 }).toBe(0);
      const refused = await openCall(() => client.listSessions({}, { headers: { authorization: `Bearer ${token}` } }));
      expect([refused.code, errorReason(refused)]).toStrictEqual([Code.Unauthenticated, "SESSION_INVALID"]);
    } finally {
      await new Promise((resolve) => service.close(resolve));
    }
  });

  /** The error a call fails with. */
  async function openCall(call: () => Promise<unknown>): Promise<ConnectError> {
    try {
      await call();
    } catch (error) {
      return ConnectError.from(error);
    }
    throw new Error("the call was not refused");
  }

  /** The error a WatchRevocations stream opened with `credential` ends with. */
  async function openStream(credential: string): Promise<ConnectError> {
    const client = createClient(SessionService, createGrpcTransport({ baseUrl: server.baseUrl }));
    try {
      for await (const _ of client.watchRevocations({}, { headers: { authorization: `Bearer ${credential}` } })) {
        /* refused before any message */
      }
    } catch (error) {
      return ConnectError.from(error);
    }
    throw new Error("the stream was not refused");
  }
});

describe.skipIf(!BACKENDS.includes("mysql"))("session validator when the server stops hearing revocations (Redis pub/sub cut)", () => {
  it("the server ends the stream, the validator falls back to ValidateSession, and both come back when the subscription does", async () => {
    const redis = new URL(REDIS_URL);
    const redisProxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    const server = await startTestServer("mysql", {
      env: { REDIS_URL: `redis://127.0.0.1:${redisProxy.port}` },
    });
    const caller = createCaller("grpc-js", server.baseUrl);
    const { secret } = await server.runtime.app.apiKeys.create({
      tenantId: DEFAULT_TENANT_ID,
      name: "validator",
      permissions: ["sessions.validate"],
      createdBy: "test",
    });
    const v = createSessionValidator({ baseUrl: server.baseUrl, apiKey: secret, maxReconnectDelayMs: 300, fallbackTtlMs: 300 });
    try {
      expect(await v.live()).toBe(true);
      const email = `validator.redis.${Date.now()}@example.test`;
      await caller.call(IdentityService.method.signUp, { email, password: PASSWORD });
      const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
      const { sessionToken } = await caller.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
      await v.validate(sessionToken);
      expect(v.size).toBe(1);

      // The server's subscriber connection (the one that sent SUBSCRIBE) is reset: it hears nothing until it resubscribes.
      redisProxy.reset((bytes) => /\r\nsubscribe\r\n/i.test(bytes));
      await expect.poll(() => v.state, { timeout: 3000, interval: 5 }).toBe("down");
      // Meanwhile: cached answers for the short TTL only, then ValidateSession (which still refuses at once).
      await caller.call(SessionService.method.signOut, {}, { authorization: `Bearer ${sessionToken}` });
      expect(await acceptedFor(v, sessionToken, Date.now())).toBeLessThanOrEqual(300 + 200);
      // The subscription comes back (a new connection), and so does the stream.
      await expect.poll(() => v.state, { timeout: 10_000, interval: 20 }).toBe("live");
    } finally {
      v.close();
      caller.close();
      await server.close();
      await redisProxy.close();
    }
  });
});
