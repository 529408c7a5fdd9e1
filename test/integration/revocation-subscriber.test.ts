// Revocation reaching another instance when its pub/sub subscriber fails
// (docs/revocation.md). Two servers share MySQL and Redis; B reaches Redis
// through a TCP proxy that stalls (holds open, forwards nothing) or resets B's
// subscriber connection only. A session B has cached is signed out on A: B
// must refuse it within the documented bound, not after its 30 s cache bound.
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import type { Invalidation } from "../../src/domain/ports/invalidation.ts";
import { createRedisStores } from "../../src/store/redis/stores.ts";
import { BACKENDS, REDIS_URL, redisPrefix } from "../support/backends.ts";
import { createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

const PASSWORD = "correct horse battery staple";
/** The subscriber check's period plus its PING timeout (src/store/redis/stores.ts), and slack for a loaded machine. */
const STALL_BOUND_MS = 1000 + 1000 + 1000;
let seq = 0;

/** The connection that subscribed: its client sent a SUBSCRIBE command. */
const subscriber = (clientBytes: string) => /\r\nsubscribe\r\n/i.test(clientBytes);

describe.skipIf(!BACKENDS.includes("mysql"))("revocation across instances when the subscriber fails", () => {
  let a: TestServer;
  let b: TestServer;
  let proxy: TcpProxy;
  let onA: Caller;
  let onB: Caller;

  beforeAll(async () => {
    const shared = { KEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`, BLIND_INDEX_KEY: randomBytes(32).toString("base64") };
    a = await startTestServer("mysql", { env: shared });
    const redis = new URL(REDIS_URL);
    proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    b = await startTestServer("mysql", {
      env: { ...shared, MYSQL_URL: a.config.mysqlUrl!, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_KEY_PREFIX: a.config.redisKeyPrefix },
      runtime: { deliver: false }, // A delivers: its SMTP capture gets the mail
    });
    onA = createCaller("grpc-js", a.baseUrl);
    onB = createCaller("grpc-js", b.baseUrl);
  });
  afterAll(async () => {
    onA?.close();
    onB?.close();
    await b?.close();
    await proxy?.close();
    await a?.close();
  });

  /** A live session made on A, validated on B, which now answers it from its cache. */
  async function cachedOnB(): Promise<string> {
    const sessionToken = await validatedOnB();
    expect(b.runtime.app.sessions.validate(sessionToken)).not.toBeInstanceOf(Promise); // cached on B
    return sessionToken;
  }

  /** Signs out on A; resolves with how long B kept accepting the session (polled every 50 ms, up to 10 s). */
  async function acceptedOnBAfterSignOut(sessionToken: string): Promise<number> {
    await onA.call(SessionService.method.signOut, {}, { authorization: `Bearer ${sessionToken}` });
    const signedOut = Date.now();
    while (Date.now() - signedOut < 10_000) {
      try {
        await onB.call(SessionService.method.validateSession, { sessionToken });
      } catch (error) {
        if (ConnectError.from(error).code !== Code.Unauthenticated) throw error; // only a refusal counts, not an outage
        return Date.now() - signedOut;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return Infinity;
  }

  it("with a healthy subscriber, B refuses a session signed out on A at once", async () => {
    expect(await acceptedOnBAfterSignOut(await cachedOnB())).toBeLessThan(500);
  });

  it("with B's subscriber stalled (held open, nothing delivered), B refuses within the bound and answers from Redis meanwhile", async () => {
    const token = await cachedOnB();
    proxy.stall(subscriber);
    try {
      expect(await acceptedOnBAfterSignOut(token)).toBeLessThan(STALL_BOUND_MS);
      // Still stalled: B does not cache, so the next revocation needs no message at all.
      const next = await validatedOnB();
      expect(b.runtime.app.sessions.validate(next)).toBeInstanceOf(Promise); // not served from B's cache
      expect(await acceptedOnBAfterSignOut(next)).toBeLessThan(500);
    } finally {
      proxy.resume();
    }
    // Back to normal: B caches again and hears revocations again.
    const later = await validatedOnB();
    const cachedOnBNow = async () => {
      const answer = b.runtime.app.sessions.validate(later);
      return !(answer instanceof Promise) || (await answer, false);
    };
    await expect.poll(cachedOnBNow, { timeout: 5000, interval: 100 }).toBe(true);
    expect(await acceptedOnBAfterSignOut(later)).toBeLessThan(500);
  });

  it("with B's subscriber connection reset, B refuses at once", async () => {
    const token = await cachedOnB();
    proxy.reset(subscriber);
    expect(await acceptedOnBAfterSignOut(token)).toBeLessThan(1000);
  });

  /** A live session made on A and validated once on B (which does not cache it while its subscriber is down). */
  async function validatedOnB(): Promise<string> {
    const email = `revocation.${Date.now()}.${seq++}@example.test`;
    await onA.call(IdentityService.method.signUp, { email, password: PASSWORD });
    const mail = await a.waitForMail(email, (m) => m.text.includes("token="));
    const { sessionToken } = await onA.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
    await onB.call(SessionService.method.validateSession, { sessionToken });
    return sessionToken;
  }
});

describe.skipIf(!BACKENDS.includes("mysql"))("the Redis invalidation bus watching its subscriber", () => {
  it("reports a stalled subscription down within its check, and up once a new connection answers; a reset one at once", async () => {
    const redis = new URL(REDIS_URL);
    const proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    const keyPrefix = redisPrefix();
    const watched = createRedisStores(`redis://127.0.0.1:${proxy.port}`, { now: Date.now, keyPrefix, subscriberCheck: { intervalMs: 100, timeoutMs: 100 } });
    const publisher = createRedisStores(REDIS_URL, { now: Date.now, keyPrefix });
    const states: Array<{ up: boolean; at: number }> = [];
    const heard: Invalidation[][] = [];
    try {
      await watched.invalidation.subscribe({ invalidate: (m) => heard.push([...m]), subscribed: (up) => states.push({ up, at: Date.now() }) });
      await new Promise((r) => setTimeout(r, 300));
      expect(states.filter((s) => !s.up)).toStrictEqual([]); // healthy: never reported down

      const stalledAt = Date.now();
      proxy.stall(subscriber);
      await expect.poll(() => states.some((s) => !s.up), { timeout: 2000, interval: 20 }).toBe(true);
      expect(states.find((s) => !s.up)!.at - stalledAt).toBeLessThan(1000); // 100 ms period + 100 ms timeout, on a loaded machine

      proxy.resume();
      await expect.poll(() => states.at(-1)?.up, { timeout: 3000, interval: 20 }).toBe(true);
      await publisher.invalidation.publish([{ kind: "account", accountId: "a1" }]);
      await expect.poll(() => heard.some((m) => m[0]?.kind === "account"), { timeout: 2000, interval: 20 }).toBe(true); // delivered again

      const count = states.length;
      proxy.reset(subscriber);
      await expect.poll(() => states.slice(count).some((s) => !s.up), { timeout: 500, interval: 10 }).toBe(true);
      await expect.poll(() => states.at(-1)?.up, { timeout: 3000, interval: 20 }).toBe(true);
    } finally {
      await watched.close();
      await publisher.close();
      await proxy.close();
    }
  });
});
