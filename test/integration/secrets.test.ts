// Secrets stay secret: nothing sensitive in logs or responses, and password
// hashes are upgraded on sign-in when the parameters were weaker.
import argon2 from "argon2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { Redis } from "ioredis";
import { BACKENDS, REDIS_URL } from "../support/backends.ts";
import { createCaller, type Caller } from "../support/clients.ts";
import { redisDump } from "../support/redis-dump.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { appCode } from "../support/totp.ts";

const PASSWORD = "correct horse battery staple";

describe.each(BACKENDS)("secrets on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  const logLines: string[] = [];

  beforeAll(async () => {
    // Retries a second apart (at most), so a transient failure is retried, and logged, within the test.
    server = await startTestServer(backend, { env: { LOG_LEVEL: "trace", OUTBOX_RETRY_BASE_SECONDS: "1", OUTBOX_RETRY_MAX_DELAY_SECONDS: "1" }, logLines });
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  async function verifiedAccount(email: string) {
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
    const token = linkToken((await server.waitForMail(email)).text);
    const verified = await api.call(IdentityService.method.verifyIdentity, { token });
    return { token, ...verified };
  }

  it("logs neither passwords, addresses, session tokens nor link tokens, even at trace level", async () => {
    const email = `logs.${Date.now()}@example.test`;
    const { token, sessionToken } = await verifiedAccount(email);
    const signedIn = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    await api.call(SessionService.method.validateSession, { sessionToken: signedIn.sessionToken });
    await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: "wrong password entirely" } } }).catch(() => {});
    await api.call(SessionService.method.signOut, {}, { authorization: `Bearer ${signedIn.sessionToken}` });
    const logs = logLines.join("\n");
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of [PASSWORD, "wrong password entirely", email, token, sessionToken.split(".")[1]!, signedIn.sessionToken.split(".")[1]!]) {
      expect(logs).not.toContain(secret);
    }
  });

  it("logs no TOTP secret, otpauth URI, recovery code, challenge or second-factor code, even at trace level", async () => {
    const email = `logs.mfa.${Date.now()}@example.test`;
    const { sessionToken } = await verifiedAccount(email);
    const auth = { authorization: `Bearer ${sessionToken}` };
    const started = await api.call(AccountService.method.startTotpEnrollment, {}, auth);
    const confirmCode = appCode(started.secret);
    const { recoveryCodes } = await api.call(AccountService.method.confirmTotpEnrollment, { code: confirmCode }, auth);
    const challenge = async () =>
      (await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).secondFactorChallenge!
        .challenge;
    const first = await challenge();
    const signInCode = appCode(started.secret, 1);
    await api.call(SessionService.method.completeSecondFactor, { challenge: first, code: { case: "totpCode", value: signInCode } });
    const second = await challenge();
    await api.call(SessionService.method.completeSecondFactor, { challenge: second, code: { case: "recoveryCode", value: recoveryCodes[0]! } });
    // A wrong code too: refusals go through the error interceptor, which logs what is unexpected.
    await api
      .call(SessionService.method.completeSecondFactor, { challenge: await challenge(), code: { case: "recoveryCode", value: recoveryCodes[0]! } })
      .catch(() => {});
    const logs = logLines.join("\n");
    expect(logLines.length).toBeGreaterThan(0);
    const secrets = [started.secret, started.otpauthUri, first, second, ...recoveryCodes, ...recoveryCodes.map((c) => c.replace("-", ""))];
    for (const secret of secrets) expect(logs).not.toContain(secret);
    // 6-digit codes could appear by chance in ids or times: only as a JSON value would they be the code itself.
    for (const code of [confirmCode, signInCode]) expect(logs).not.toContain(`"${code}"`);
  });

  /** Waits until an outbox row satisfies `done` (read from the database directly). */
  async function waitForOutbox(done: (row: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const rows = await server.rawRows("outbox");
      const found = rows.find(done);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no outbox row as expected within 15 s: ${JSON.stringify(rows.map((r) => [r.status, r.attempts, r.last_error]))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it("logs no recipient address when the SMTP server refuses it, permanently (550) or for now (451, on every retry)", async () => {
    const before = logLines.length;
    try {
      // Permanent: failed at once, never retried.
      server.smtp.refuse(550);
      const refused = `refused.${Date.now()}@example.test`;
      await api.call(IdentityService.method.signUp, { email: refused, password: PASSWORD });
      const failed = await waitForOutbox((r) => r.status === "failed" && r.last_error_class === "permanent");
      expect(failed.last_error).toBe("EENVELOPE 550 RCPT TO");

      // Transient: retried (and logged) several times, then delivered once the server accepts.
      server.smtp.refuse(451);
      const deferred = `deferred.${Date.now()}@example.test`;
      await api.call(IdentityService.method.signUp, { email: deferred, password: PASSWORD });
      await waitForOutbox((r) => r.status === "pending" && Number(r.attempts) >= 3 && r.last_error_class === "transient");
      server.smtp.refuse(null);
      await server.waitForMail(deferred);

      const logs = logLines.slice(before).join("\n");
      // The failures were logged (by their codes)...
      expect(logs).toContain("EENVELOPE");
      expect(logs).toMatch(/"responseCode":550/);
      expect(logs.match(/"responseCode":451/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
      // ...and neither address appears, in any field, on any attempt.
      for (const address of [refused, deferred, refused.split("@")[0]!, deferred.split("@")[0]!]) expect(logs).not.toContain(address);
      expect(JSON.stringify(await server.rawRows("outbox"))).not.toContain("@example.test");
    } finally {
      server.smtp.refuse(null);
    }
  });

  it("never returns hashes or keys, and upgrades a weaker password hash on sign-in", async () => {
    const email = `rehash.${Date.now()}@example.test`;
    const { accountId } = await verifiedAccount(email);
    const weak = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    await server.runtime.durable.accounts.setPasswordHash(accountId, weak, Date.now());
    const hashOf = async () => (await server.rawRows("accounts")).find((r) => r.id === accountId)?.password_hash as string;
    expect(await hashOf()).toBe(weak);

    const response = await fetch(`${server.baseUrl}/identity.v1.SessionService/SignIn`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ emailPassword: { email, password: PASSWORD }, profileMask: "id,email,tenantId,role,state,locale,createTime" }),
    });
    const body = await response.text();
    expect(response.status).toBe(200);
    expect(body).not.toContain("$argon2");
    const upgraded = await hashOf();
    expect(upgraded).not.toBe(weak);
    expect(upgraded).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);

    const sessionToken = (JSON.parse(body) as { sessionToken: string }).sessionToken;
    const account = await fetch(`${server.baseUrl}/identity.v1.AccountService/GetAccount`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${sessionToken}` },
      body: "{}",
    }).then((r) => r.text());
    expect(account).toContain(email);
    const keyRow = (await server.rawKeyRows("account_keys")).find((r) => r.account_id === accountId);
    expect(account).not.toContain(String(keyRow?.wrapped_key).split(".")[1]);
    expect(account).not.toContain("$argon2");
    // The new hash still verifies: signing in again works.
    await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    expect((await api.call(AccountService.method.getAccount, {}, { authorization: `Bearer ${sessionToken}` })).account?.id).toBe(accountId);
  });

  it.runIf(backend === "mysql")("keeps no password hash, address, IP address or user agent in clear in any Redis key", async () => {
    const marker = `UaMarker${Date.now()}`;
    const agent = createCaller("connect-json-h1", server.baseUrl, { userAgent: `Mozilla/5.0 ${marker}` });
    try {
      // A signed-in session (its record holds where it was opened) ...
      const email = `redis.dump.${Date.now()}@example.test`;
      await agent.call(IdentityService.method.signUp, { email, password: PASSWORD });
      await agent.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
      await agent.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
      // ... and a second sign-up of an unverified address (its link carries the new password's hash).
      const pending = `redis.pending.${Date.now()}@example.test`;
      await agent.call(IdentityService.method.signUp, { email: pending, password: PASSWORD });
      await agent.call(IdentityService.method.signUp, { email: pending, password: `${PASSWORD} again` });
      await server.waitForMail(
        pending,
        (m) => m.text.includes("verify-email?token=") && server.inbox.filter((n) => n.envelopeTo.includes(pending)).length >= 2,
      );

      const dump = await redisDump(server.config.redisKeyPrefix);
      expect(dump).toContain(`${server.config.redisKeyPrefix}sess:`); // the sessions are there ...
      expect(dump).toContain(`${server.config.redisKeyPrefix}tok:`); // ... and the links
      expect(dump).not.toContain("$argon2");
      expect(dump).not.toContain(marker);
      // The client IP stays out of sessions (rate-limit counters are keyed by it for at most a day).
      expect(dump.split("\n").filter((line) => line.includes(":sess:") && line.includes("127.0.0.1"))).toEqual([]);
      for (const address of [email, pending]) {
        expect(dump.toLowerCase()).not.toContain(address);
        expect(dump.toLowerCase()).not.toContain(address.split("@")[0]!);
      }
      // A session stays small (DESIGN: under 512 bytes in Redis), even with the longest user agent kept.
      const redis = new Redis(REDIS_URL);
      try {
        const keys = await redis.keys(`${server.config.redisKeyPrefix}sess:*:*`);
        expect(keys.length).toBeGreaterThan(0);
        for (const key of keys) expect(Buffer.byteLength((await redis.get(key)) ?? "")).toBeLessThan(512);
      } finally {
        redis.disconnect();
      }
    } finally {
      agent.close();
    }
  });
});
