// The first path end to end with REDIS_CLUSTER_NODES: two servers on one
// MySQL database and a real Redis Cluster of three masters (started once for
// this file). SignUp → the emailed link → VerifyIdentity → SignIn →
// ValidateSession → SignOut → ValidateSession refused, over gRPC and Connect;
// and a session ended on one instance refused at once by the other, which had
// it cached (the invalidation crosses the cluster's nodes).
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, type Caller, type Protocol } from "../support/clients.ts";
import { CLUSTER_AVAILABLE, startRedisCluster, type RedisCluster } from "../support/redis-cluster.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `cluster.${tag}.${Date.now()}.${seq++}@example.test`;

describe.skipIf(!CLUSTER_AVAILABLE || !BACKENDS.includes("mysql"))("the first path on MySQL and a Redis Cluster", () => {
  let cluster: RedisCluster;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const shared = { KEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`, BLIND_INDEX_KEY: randomBytes(32).toString("base64") };
    a = await startTestServer("mysql", { env: shared, redisCluster: cluster.env });
    b = await startTestServer("mysql", {
      env: { ...shared, MYSQL_URL: a.config.mysqlUrl!, REDIS_KEY_PREFIX: a.config.redisKeyPrefix },
      redisCluster: cluster.env,
      runtime: { deliver: false }, // A delivers: its SMTP capture gets the mail
    });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await cluster?.stop();
  });

  async function signUpAndVerify(api: Caller, email: string) {
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const mail = await a.waitForMail(email, (m) => m.text.includes("token="));
    return api.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
  }

  it("runs on the cluster, and is ready", async () => {
    expect(a.config.redisClusterNodes).toHaveLength(3);
    expect(a.config.redisUrl).toBeUndefined();
    expect((await fetch(`${a.baseUrl}/readyz`)).status).toBe(200);
  });

  it.each<Protocol>(["grpc-js", "connect-json-h1"])(
    "over %s: signs up, verifies, signs in, validates, signs out, and the session is refused",
    async (protocol) => {
      const api = createCaller(protocol, a.baseUrl);
      try {
        const email = uniqueEmail(protocol);
        const verified = await signUpAndVerify(api, email);
        const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
        expect(signedIn.accountId).toBe(verified.accountId);
        const validated = await api.call(SessionService.method.validateSession, { sessionToken: signedIn.sessionToken });
        expect(validated.accountId).toBe(verified.accountId);
        await api.call(SessionService.method.signOut, {}, { authorization: `Bearer ${signedIn.sessionToken}` });
        expect(await codeOf(api.call(SessionService.method.validateSession, { sessionToken: signedIn.sessionToken }))).toBe(Code.Unauthenticated);
        // The verification session is another one, and lives on.
        expect((await api.call(SessionService.method.validateSession, { sessionToken: verified.sessionToken })).accountId).toBe(verified.accountId);
      } finally {
        api.close();
      }
    },
  );

  it("a session signed out on A, cached on B, is refused by B at once", async () => {
    const onA = createCaller("grpc-js", a.baseUrl);
    const onB = createCaller("grpc-js", b.baseUrl);
    try {
      const { sessionToken } = await signUpAndVerify(onA, uniqueEmail("revoke"));
      await onB.call(SessionService.method.validateSession, { sessionToken });
      expect(b.runtime.app.sessions.validate(sessionToken)).not.toBeInstanceOf(Promise); // B answers it from its cache
      await onA.call(SessionService.method.signOut, {}, { authorization: `Bearer ${sessionToken}` });
      const signedOut = Date.now();
      await expect
        .poll(
          () =>
            onB.call(SessionService.method.validateSession, { sessionToken }).then(
              () => "accepted",
              (e: unknown) => ConnectError.from(e).code,
            ),
          { timeout: 5000, interval: 20 },
        )
        .toBe(Code.Unauthenticated);
      expect(Date.now() - signedOut).toBeLessThan(500); // by the invalidation, not the cache's 30 s bound
    } finally {
      onA.close();
      onB.close();
    }
  });
});
