// Sessions, end to end over a real server on every backend and protocol: a
// person signed in on two devices lists both (user agent, IP, times, which one
// is this one); revoking one — or all the others — makes ValidateSession refuse
// it at once, including over grpc-js, whose calls are answered by the fast path
// from the in-process cache; refreshing slides the idle expiry but never past
// the absolute lifetime; an idle session expires. Time moves by an injected clock.
import { toJson } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AssuranceLevel } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { ListSessionsResponseSchema, SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { hashSecret } from "../../src/crypto/keyring.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/domain/tenants.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, type Caller, type Protocol } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** A tenant whose sessions idle out after 1 h and end after 3 h whatever happens. */
const SHORT = "short-sessions";
let seq = 0;
const uniqueEmail = (tag: string) => `sessions.${tag}.${Date.now()}.${seq++}@example.test`;
const ms = (t: Timestamp | undefined) => Number(t!.seconds) * 1000 + Math.floor(t!.nanos / 1e6);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe.each(BACKENDS)("sessions on the %s backend", (backend) => {
  let server: TestServer;
  let clockOffset = 0;
  const now = () => Date.now() + clockOffset;
  /** ValidateSession over grpc-js: served by the fast path and its cache. */
  let fast: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now } });
    await server.runtime.durable.tenants.ensure({
      id: SHORT,
      name: "Short sessions",
      settings: { ...DEFAULT_TENANT_SETTINGS, sessionIdleTimeoutMs: HOUR, sessionAbsoluteLifetimeMs: 3 * HOUR },
      createdAt: Date.now(),
    });
    fast = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    fast?.close();
    await server?.close();
  });

  const validate = (api: Caller, sessionToken: string) => api.call(SessionService.method.validateSession, { sessionToken });

  /** Signs a new person up and verifies them (which signs them in); returns the verification session's token. */
  async function person(api: Caller, tag: string, tenant?: string) {
    const email = uniqueEmail(tag);
    const headers: Record<string, string> = tenant ? { "x-tenant-id": tenant } : {};
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" }, headers);
    const token = linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text);
    const verified = await api.call(IdentityService.method.verifyIdentity, { token });
    return { email, headers, token: verified.sessionToken };
  }

  /** Signs in from a device: a client of its own with its own user agent. */
  async function signInFrom(protocol: Protocol, userAgent: string, who: { email: string; headers: Record<string, string> }): Promise<string> {
    const device = createCaller(protocol, server.baseUrl, { userAgent });
    try {
      const signedIn = await device.call(
        SessionService.method.signIn,
        { method: { case: "emailPassword", value: { email: who.email, password: PASSWORD } } },
        who.headers,
      );
      return signedIn.sessionToken;
    } finally {
      device.close();
    }
  }

  describe.each(PROTOCOLS)("over %s", (protocol: Protocol) => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller(protocol, server.baseUrl);
    });
    afterAll(() => api.close());

    it("lists the sessions of two devices newest first, with user agents, IP, times and the current flag, and no token", async () => {
      const who = await person(api, `list-${protocol}`);
      const phone = await signInFrom(protocol, "PhoneApp/1.0 (Android 15)", who);
      const laptop = await signInFrom(protocol, "Mozilla/5.0 (X11; Linux) Firefox/140.0", who);

      const listed = await api.call(SessionService.method.listSessions, {}, bearer(laptop));
      const ids = await Promise.all([laptop, phone, who.token].map(async (t) => (await validate(fast, t)).sessionId));
      expect(listed.sessions.map((s) => s.id)).toStrictEqual(ids);
      expect(listed.sessions.map((s) => s.current)).toStrictEqual([true, false, false]);
      expect(listed.sessions[0]!.userAgent).toContain("Mozilla/5.0 (X11; Linux) Firefox/140.0");
      expect(listed.sessions[1]!.userAgent).toContain("PhoneApp/1.0 (Android 15)");
      const created = listed.sessions.map((s) => ms(s.createTime));
      expect([...created].sort((a, b) => b - a)).toStrictEqual(created);
      for (const s of listed.sessions) {
        expect(s.ipAddress).toBe("127.0.0.1");
        expect(s.assuranceLevel).toBe(AssuranceLevel.AAL1);
        expect(ms(s.lastSeenTime)).toBe(ms(s.createTime));
        expect(ms(s.expireTime)).toBe(ms(s.createTime) + DEFAULT_TENANT_SETTINGS.sessionIdleTimeoutMs);
      }

      // Each records how it was opened: the two sign-ins by password, the first by the verification link, all about the email identity.
      const [email] = (await api.call(IdentityService.method.listIdentities, {}, bearer(laptop))).identities;
      expect(listed.sessions.map((s) => s.authenticationMethods.map((m) => [m.method, m.identityId, ms(m.completeTime)]))).toStrictEqual(
        listed.sessions.map((s) => [[s.id === ids[2] ? "email_link" : "password", email!.id, ms(s.createTime)]]),
      );
      // ValidateSession shows the same, on the fast path (grpc-js) and through Connect.
      for (const [caller, token] of [
        [fast, laptop],
        [api, who.token],
      ] as const) {
        const valid = await validate(caller, token);
        expect(valid.authenticationMethods.map((m) => m.method)).toStrictEqual([token === laptop ? "password" : "email_link"]);
        expect(valid.authenticationMethods[0]!.identityId).toBe(email!.id);
      }

      // From the phone, the phone is the current one.
      const fromPhone = await api.call(SessionService.method.listSessions, {}, bearer(phone));
      expect(fromPhone.sessions.filter((s) => s.current).map((s) => s.id)).toStrictEqual([ids[1]]);

      const wire = JSON.stringify(toJson(ListSessionsResponseSchema, listed));
      for (const token of [laptop, phone, who.token]) {
        expect(wire).not.toContain(token.split(".")[1]);
        expect(wire).not.toContain(hashSecret(token));
      }
    });

    it("revokes one session: ValidateSession refuses it at once, even from the grpc-js fast path's cache", async () => {
      const who = await person(api, `revoke-${protocol}`);
      const phone = await signInFrom(protocol, "PhoneApp/1.0", who);
      const laptop = await signInFrom(protocol, "Laptop/1.0", who);
      // Cached by the fast path.
      await validate(fast, phone);
      const phoneId = (await validate(fast, phone)).sessionId;

      await api.call(SessionService.method.revokeSession, { sessionId: phoneId }, bearer(laptop));

      expect(await codeOf(validate(fast, phone))).toBe(Code.Unauthenticated);
      expect(await codeOf(validate(api, phone))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(AccountService.method.getAccount, {}, bearer(phone)))).toBe(Code.Unauthenticated);
      expect((await validate(fast, laptop)).sessionId).not.toBe(phoneId);
      const left = await api.call(SessionService.method.listSessions, {}, bearer(laptop));
      expect(left.sessions.map((s) => s.id)).not.toContain(phoneId);
      expect(left.sessions).toHaveLength(2);

      // Gone, made up, or someone else's: not found, and the other person's session lives on.
      expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId: phoneId }, bearer(laptop)))).toBe(Code.NotFound);
      expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId: "00000000-0000-7000-8000-000000000000" }, bearer(laptop)))).toBe(
        Code.NotFound,
      );
      const stranger = await person(api, `stranger-${protocol}`);
      const strangersId = (await validate(fast, stranger.token)).sessionId;
      expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId: strangersId }, bearer(laptop)))).toBe(Code.NotFound);
      expect((await validate(fast, stranger.token)).sessionId).toBe(strangersId);
      expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId: "" }, bearer(laptop)))).toBe(Code.InvalidArgument);

      // Revoking one's own current session signs it out.
      const laptopId = (await validate(fast, laptop)).sessionId;
      await api.call(SessionService.method.revokeSession, { sessionId: laptopId }, bearer(laptop));
      expect(await codeOf(validate(fast, laptop))).toBe(Code.Unauthenticated);
    });

    it("revokes every other session and keeps the current one", async () => {
      const who = await person(api, `others-${protocol}`);
      const phone = await signInFrom(protocol, "PhoneApp/1.0", who);
      const tablet = await signInFrom(protocol, "TabletApp/1.0", who);
      const laptop = await signInFrom(protocol, "Laptop/1.0", who);
      for (const t of [who.token, phone, tablet, laptop]) await validate(fast, t);

      expect((await api.call(SessionService.method.revokeOtherSessions, {}, bearer(laptop))).revokedCount).toBe(3);

      for (const t of [who.token, phone, tablet]) {
        expect(await codeOf(validate(fast, t))).toBe(Code.Unauthenticated);
        expect(await codeOf(validate(api, t))).toBe(Code.Unauthenticated);
      }
      expect((await validate(fast, laptop)).accountId).toBe((await validate(api, laptop)).accountId);
      const left = await api.call(SessionService.method.listSessions, {}, bearer(laptop));
      expect(left.sessions.map((s) => s.current)).toStrictEqual([true]);
      expect((await api.call(SessionService.method.revokeOtherSessions, {}, bearer(laptop))).revokedCount).toBe(0);
    });

    it("refreshes by sliding the idle expiry, never past the absolute lifetime", async () => {
      const who = await person(api, `refresh-${protocol}`, SHORT);
      const token = who.token;
      const [mine] = (await api.call(SessionService.method.listSessions, {}, bearer(token))).sessions;
      const createdAt = ms(mine!.createTime);
      expect(ms(mine!.expireTime)).toBe(createdAt + HOUR);
      const absolute = createdAt + 3 * HOUR;

      /** Validates over the fast path (caching the session), refreshes, and checks the fast path sees the new expiry at once. */
      const refresh = async () => {
        await validate(fast, token);
        const before = now();
        const { expireTime } = await api.call(SessionService.method.refreshSession, {}, bearer(token));
        expect(ms((await validate(fast, token)).expireTime)).toBe(ms(expireTime));
        expect(ms((await validate(api, token)).expireTime)).toBe(ms(expireTime));
        return { expiresAt: ms(expireTime), before };
      };

      try {
        clockOffset += 50 * MINUTE;
        const first = await refresh();
        expect(first.expiresAt).toBeGreaterThanOrEqual(first.before + HOUR);
        expect(first.expiresAt).toBeLessThanOrEqual(now() + HOUR);

        clockOffset += 50 * MINUTE; // past the first idle expiry: alive thanks to the refresh
        const second = await refresh();
        expect(second.expiresAt).toBeGreaterThanOrEqual(second.before + HOUR);
        const [seen] = (await api.call(SessionService.method.listSessions, {}, bearer(token))).sessions;
        expect(ms(seen!.lastSeenTime)).toBeGreaterThanOrEqual(second.before);
        expect(ms(seen!.createTime)).toBe(createdAt);

        clockOffset += 50 * MINUTE; // 2 h 30: now + 1 h would pass the 3 h absolute lifetime
        expect((await refresh()).expiresAt).toBe(absolute);
        clockOffset += 25 * MINUTE;
        expect((await refresh()).expiresAt).toBe(absolute);

        clockOffset += 6 * MINUTE; // 3 h 1 min
        expect(await codeOf(validate(fast, token))).toBe(Code.Unauthenticated);
        expect(await codeOf(validate(api, token))).toBe(Code.Unauthenticated);
        expect(await codeOf(api.call(SessionService.method.refreshSession, {}, bearer(token)))).toBe(Code.Unauthenticated);
      } finally {
        clockOffset = 0;
      }
    });

    it("expires a session left idle past the idle timeout, while a refreshed one lives on", async () => {
      const who = await person(api, `idle-${protocol}`, SHORT);
      const idle = who.token;
      const active = await signInFrom(protocol, "Active/1.0", who);
      await validate(fast, idle);
      try {
        clockOffset += 50 * MINUTE;
        await validate(fast, idle); // validating is not activity: it does not extend the session
        await api.call(SessionService.method.refreshSession, {}, bearer(active));
        clockOffset += 11 * MINUTE;
        expect(await codeOf(validate(fast, idle))).toBe(Code.Unauthenticated);
        expect(await codeOf(validate(api, idle))).toBe(Code.Unauthenticated);
        expect(await codeOf(api.call(SessionService.method.refreshSession, {}, bearer(idle)))).toBe(Code.Unauthenticated);
        await validate(fast, active);
        const left = await api.call(SessionService.method.listSessions, {}, bearer(active));
        expect(left.sessions.map((s) => s.current)).toStrictEqual([true]);
      } finally {
        clockOffset = 0;
      }
    });

    it("requires a session", async () => {
      expect(await codeOf(api.call(SessionService.method.listSessions, {}))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(SessionService.method.revokeSession, { sessionId: "00000000-0000-7000-8000-000000000000" }))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(SessionService.method.revokeOtherSessions, {}))).toBe(Code.Unauthenticated);
      expect(await codeOf(api.call(SessionService.method.refreshSession, {}))).toBe(Code.Unauthenticated);
    });
  });
});
