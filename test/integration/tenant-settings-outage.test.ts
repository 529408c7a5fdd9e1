// ValidateSession keeps answering for live sessions while MySQL is briefly down
// (docs/revocation.md, "When MySQL fails"): the tenant settings it needs are
// re-read every 10 s, and a failed re-read must fall back to the last known
// settings. The server reaches MySQL through a TCP proxy the test cuts
// (connections reset, new ones refused); Redis stays up.
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS, createMysqlDatabase } from "../support/backends.ts";
import { createCaller, PROTOCOLS, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

describe.skipIf(!BACKENDS.includes("mysql"))("ValidateSession while MySQL is down", () => {
  let clock = Date.now();
  let server: TestServer;
  let proxy: TcpProxy;
  let database: { url: string; drop: () => Promise<void> };
  const callers: Caller[] = [];

  beforeAll(async () => {
    database = await createMysqlDatabase();
    const direct = new URL(database.url);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 3306) });
    const viaProxy = new URL(database.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    server = await startTestServer("mysql", { env: { MYSQL_URL: viaProxy.toString() }, runtime: { now: () => clock } });
  });
  afterAll(async () => {
    for (const caller of callers) caller.close();
    proxy?.refuse(false);
    await server?.close();
    await proxy?.close();
    await database?.drop();
  });

  it("answers a live session on every protocol from the last known tenant settings, and the outage stays visible elsewhere", async () => {
    const caller = createCaller("connect-json-h1", server.baseUrl);
    callers.push(caller);
    const email = `outage.${Date.now()}@example.test`;
    await caller.call(IdentityService.method.signUp, { email, password: "correct horse battery staple" });
    const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
    const { sessionToken, accountId } = await caller.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
    expect((await caller.call(SessionService.method.validateSession, { sessionToken })).accountId).toBe(accountId);

    proxy.refuse(true);
    proxy.reset(() => true);
    try {
      clock += 11_000; // the tenant's cached settings are due for a re-read, which fails
      for (const protocol of PROTOCOLS) {
        const onProtocol = createCaller(protocol, server.baseUrl);
        callers.push(onProtocol);
        for (let i = 0; i < 3; i++) {
          expect((await onProtocol.call(SessionService.method.validateSession, { sessionToken })).accountId).toBe(accountId);
        }
      }
      // What needs MySQL itself still says so.
      const refused = await caller
        .call(IdentityService.method.signUp, { email: `outage.other.${Date.now()}@example.test`, password: "correct horse battery staple" })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(refused).toBeInstanceOf(ConnectError); // refused: MySQL really is out of reach
    } finally {
      proxy.refuse(false);
    }
  });
});
