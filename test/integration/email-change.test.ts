// Changing the email address of a signed-in account, end to end over real
// servers and SMTP: StartEmailChange → a code at the new address and a notice
// at the old one → CheckEmailChangeCode → ConfirmEmailChange → the old address
// told, sign-in moves to the new address. Enumeration parity, replay, expiry,
// codes of another account or purpose, rate limits, and nothing in clear at rest.
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { emailChangeCodeKey } from "../../src/domain/email-change.ts";
import { BACKENDS, REDIS_URL } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, type Caller, refusal } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import type { Received } from "../support/smtp.ts";

const PASSWORD = "correct horse battery staple";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
let seq = 0;
const uniqueEmail = (tag: string) => `change.${tag}.${Date.now()}.${seq++}@example.test`;
/** A client IP of its own for each person (through the trusted proxy), so code limits per IP stay apart. */
let ipSeq = 0;
const nextIp = () => `198.51.100.${++ipSeq}`;

const REQUESTED = /change of your .* email address was requested/i;
const CHANGED = /email address was changed/i;
const codeIn = (mail: Received) => /\b(\d{8})\b/.exec(mail.text)?.[1];
const masked = (email: string) => `${email[0]}***${email.slice(email.indexOf("@"))}`;

function expectCodeRefused(error: ConnectError): void {
  expect(error.code).toBe(Code.InvalidArgument);
  expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("TOKEN_INVALID");
  expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["code"]);
}

describe.each(BACKENDS)("email change on the %s backend", (backend) => {
  let server: TestServer;
  let offset = 0;
  let connect: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" }, runtime: { now: () => Date.now() + offset } });
    connect = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    connect?.close();
    await server?.close();
  });

  interface Person {
    email: string;
    accountId: string;
    ip: string;
    /** Headers of calls made with the person's session, from the person's IP. */
    headers: Record<string, string>;
  }

  async function person(tag: string, api: Caller = connect): Promise<Person> {
    const email = uniqueEmail(tag);
    const ip = nextIp();
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" }, { "x-forwarded-for": ip });
    const token = linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text);
    const verified = await api.call(IdentityService.method.verifyIdentity, { token }, { "x-forwarded-for": ip });
    return { email, accountId: verified.accountId, ip, headers: { authorization: `Bearer ${verified.sessionToken}`, "x-forwarded-for": ip } };
  }

  const signIn = (api: Caller, email: string, ip: string) =>
    api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }, { "x-forwarded-for": ip });
  /** The person signed in again now: StartEmailChange asks for a sign-in within 10 minutes (step-up), and these tests move the clock. */
  async function signedInAgain(who: Person): Promise<Person> {
    const { sessionToken } = await signIn(connect, who.email, who.ip);
    return { ...who, headers: { ...who.headers, authorization: `Bearer ${sessionToken}` } };
  }
  const start = (who: Person, newEmail: string, api: Caller = connect) => api.call(IdentityService.method.startEmailChange, { newEmail }, who.headers);
  const check = (who: Person, code: string, api: Caller = connect) => api.call(IdentityService.method.checkEmailChangeCode, { code }, who.headers);
  const confirm = (who: Person, code: string, api: Caller = connect) => api.call(IdentityService.method.confirmEmailChange, { code }, who.headers);
  const mailsTo = (address: string) => server.inbox.filter((m) => m.envelopeTo.includes(address));

  /** Starts a change to a free address and returns the code it received. */
  async function startAndReceive(who: Person, newEmail = uniqueEmail("new")): Promise<{ newEmail: string; code: string }> {
    const before = mailsTo(newEmail).length;
    await start(who, newEmail);
    const mail = await server.waitForMail(newEmail, (m) => codeIn(m) !== undefined && mailsTo(newEmail).indexOf(m) >= before);
    return { newEmail, code: codeIn(mail)! };
  }

  /** Lets the outbox worker finish what is queued (deliveries are asynchronous). */
  const settle = () => new Promise((r) => setTimeout(r, 400));

  describe.each(PROTOCOLS)("over %s", (protocol) => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller(protocol, server.baseUrl);
    });
    afterAll(() => api.close());

    it("sends a code to the new address and a notice to the old one, keeps the old address until confirmed, then moves to the new one", async () => {
      const me = await person(protocol, api);
      const newEmail = uniqueEmail(`${protocol}-new`);

      expect(await start(me, newEmail.toUpperCase(), api)).toEqual(await start(me, newEmail, api));
      const codeMail = await server.waitForMail(newEmail, (m) => codeIn(m) !== undefined);
      expect(codeMail.subject).toMatch(/confirm your new email address/i);
      expect(codeMail.text).toMatch(/expires in 10 minutes/);
      const requested = await server.waitForMail(me.email, (m) => REQUESTED.test(m.subject));
      expect(requested.text).toContain(masked(newEmail));
      expect(requested.text).not.toContain(newEmail);
      // Two starts: the second replaced the first, so only one of the two codes works.
      await settle();
      const codes = mailsTo(newEmail).map(codeIn) as string[];
      expect(codes).toHaveLength(2);
      const valid = await Promise.all(
        codes.map((c) =>
          check(me, c, connect).then(
            () => true,
            (e: unknown) => (expectCodeRefused(ConnectError.from(e)), false),
          ),
        ),
      );
      expect(valid.filter(Boolean)).toHaveLength(codes[0] === codes[1] ? 2 : 1);
      const code = codes[valid.indexOf(true)]!;

      // Until confirmation the old address is the one that signs in.
      expect((await signIn(api, me.email, me.ip)).accountId).toBe(me.accountId);
      expect(await codeOf(signIn(api, newEmail, me.ip))).toBe(Code.Unauthenticated);

      const checked = await check(me, code, api);
      const expiresAt = Number(checked.expireTime!.seconds) * 1000;
      expect(expiresAt).toBeGreaterThan(Date.now() + 9 * MINUTE);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 10 * MINUTE + 1000);
      expect(Number((await check(me, ` ${code} `, api)).expireTime!.seconds)).toBe(Number(checked.expireTime!.seconds)); // not used up
      expect(await codeOf(signIn(api, newEmail, me.ip))).toBe(Code.Unauthenticated);

      expect((await confirm(me, code, api)).$typeName).toBe("identity.v1.ConfirmEmailChangeResponse");
      const changed = await server.waitForMail(me.email, (m) => CHANGED.test(m.subject));
      expect(changed.text).toContain(masked(newEmail));
      expect(changed.text).not.toContain(newEmail);

      expect(await codeOf(signIn(api, me.email, me.ip))).toBe(Code.Unauthenticated);
      const signedIn = await signIn(api, newEmail.toUpperCase(), me.ip);
      expect(signedIn.accountId).toBe(me.accountId);
      const { account } = await api.call(AccountService.method.getAccount, {}, me.headers);
      expect(account?.email).toBe(newEmail);
      expect(account?.emailVerified).toBe(true);

      // Replay: the code was used.
      expect(await codeOf(confirm(me, code, api))).toBe(Code.InvalidArgument);
      expect(await codeOf(check(me, code, api))).toBe(Code.InvalidArgument);
      // The session that made the change lives on.
      expect((await api.call(SessionService.method.validateSession, { sessionToken: me.headers.authorization!.slice(7) })).accountId).toBe(me.accountId);
    });
  });

  it("answers a taken and a free new address identically, and sends the taken one nothing", async () => {
    const me = await person("parity");
    const owner = await person("owner");
    const free = uniqueEmail("free");
    const { code } = await startAndReceive(me);

    const raw = async (newEmail: string) => {
      const response = await fetch(`${server.baseUrl}/identity.v1.IdentityService/StartEmailChange`, {
        method: "POST",
        headers: { "content-type": "application/json", ...me.headers },
        body: JSON.stringify({ newEmail }),
      });
      const headers = [...response.headers].filter(([name]) => !["date", "content-length"].includes(name));
      return { status: response.status, headers, body: await response.text() };
    };
    const taken = await raw(owner.email.toUpperCase());
    const freeAnswer = await raw(free);
    expect(taken.status).toBe(200);
    expect(taken).toStrictEqual(freeAnswer);
    // And over gRPC.
    const grpc = createCaller("grpc-js", server.baseUrl);
    expect(await start(me, owner.email, grpc)).toStrictEqual(await start(me, uniqueEmail("free"), grpc));
    grpc.close();

    await server.waitForMail(free, (m) => codeIn(m) !== undefined);
    await settle();
    // The owner of the taken address heard nothing; the caller's own address heard of every start.
    expect(mailsTo(owner.email).filter((m) => !m.text.includes("token="))).toEqual([]);
    expect(mailsTo(me.email).filter((m) => REQUESTED.test(m.subject)).length).toBeGreaterThanOrEqual(3);
    // Each start replaced the previous pending change.
    expectCodeRefused(await refusal(check(me, code)));
    // Nothing moved: both still sign in with their own addresses.
    expect((await signIn(connect, owner.email, owner.ip)).accountId).toBe(owner.accountId);
    expect((await signIn(connect, me.email, me.ip)).accountId).toBe(me.accountId);
  });

  it("validates the new address and needs a session", async () => {
    const me = await person("input");
    for (const bad of ["", "not an address", "a@b", `${"x".repeat(250)}@example.test`]) {
      const error = await refusal(start(me, bad));
      expect(error.code, bad).toBe(Code.InvalidArgument);
      expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["new_email"]);
    }
    const same = await refusal(start(me, me.email.toUpperCase()));
    expect(same.code).toBe(Code.InvalidArgument);
    expect(same.findDetails(ErrorInfoSchema)[0]?.reason).toBe("EMAIL_UNCHANGED");
    const anonymous = { "x-forwarded-for": me.ip };
    expect(await codeOf(connect.call(IdentityService.method.startEmailChange, { newEmail: uniqueEmail("anon") }, anonymous))).toBe(Code.Unauthenticated);
    expect(await codeOf(connect.call(IdentityService.method.checkEmailChangeCode, { code: "12345678" }, anonymous))).toBe(Code.Unauthenticated);
    expect(await codeOf(connect.call(IdentityService.method.confirmEmailChange, { code: "12345678" }, anonymous))).toBe(Code.Unauthenticated);
    const empty = await refusal(check(me, ""));
    expect(empty.code).toBe(Code.InvalidArgument);
    expect(empty.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["code"]);
  });

  it("refuses a wrong code, a malformed one, and a code of another account, without using up the right one", async () => {
    const me = await person("wrong");
    const other = await person("other");
    const mine = await startAndReceive(me);
    const theirs = await startAndReceive(other);

    const wrong = String((Number(mine.code) + 1) % 1e8).padStart(8, "0");
    for (const code of [wrong, theirs.code]) {
      expectCodeRefused(await refusal(check(me, code)));
      expectCodeRefused(await refusal(confirm(me, code)));
    }
    for (const code of ["1234567", "123456789", "abcdefgh"]) expectCodeRefused(await refusal(check(me, code)));
    // The other account's code still works for it, and mine for me.
    await check(other, theirs.code);
    await confirm(me, mine.code);
    await confirm(other, theirs.code);
    expect((await signIn(connect, mine.newEmail, me.ip)).accountId).toBe(me.accountId);
    expect((await signIn(connect, theirs.newEmail, other.ip)).accountId).toBe(other.accountId);
  });

  it("refuses a code for another purpose and a token of another purpose under the code", async () => {
    const me = await person("purpose");
    const { code, newEmail } = await startAndReceive(me);
    // The email-change code is no verification token...
    expect(await codeOf(connect.call(IdentityService.method.verifyIdentity, { token: code }, { "x-forwarded-for": me.ip }))).toBe(Code.InvalidArgument);
    // ...and a token of another purpose stored where this code would be is refused.
    const key = emailChangeCodeKey(me.accountId, code);
    const stored = await server.runtime.ephemeral.tokens.peek(key);
    expect(stored?.purpose).toBe("change_email");
    await server.runtime.ephemeral.tokens.put(key, { ...stored!, purpose: "reset_password" }, 5 * MINUTE);
    expectCodeRefused(await refusal(check(me, code)));
    expectCodeRefused(await refusal(confirm(me, code)));
    await server.runtime.ephemeral.tokens.put(key, stored!, 5 * MINUTE);
    await confirm(me, code);
    expect((await signIn(connect, newEmail, me.ip)).accountId).toBe(me.accountId);
  });

  it("refuses an expired code (11 minutes later) and leaves the old address in force", async () => {
    const me = await person("expiry");
    const { code, newEmail } = await startAndReceive(me);
    offset += 11 * MINUTE;
    expectCodeRefused(await refusal(check(me, code)));
    expectCodeRefused(await refusal(confirm(me, code)));
    expect((await signIn(connect, me.email, me.ip)).accountId).toBe(me.accountId);
    expect(await codeOf(signIn(connect, newEmail, me.ip))).toBe(Code.Unauthenticated);
  });

  it("asks a session older than 10 minutes to sign in again first (step-up, PermissionDenied STEP_UP_REQUIRED)", async () => {
    const me = await person("stale");
    offset += 11 * MINUTE;
    const stale = await refusal(start(me, uniqueEmail("stale.new")));
    expect(stale.code).toBe(Code.PermissionDenied);
    expect(stale.findDetails(ErrorInfoSchema)[0]?.reason).toBe("STEP_UP_REQUIRED");
    await startAndReceive(await signedInAgain(me));
  });

  it("lets one of two concurrent confirmations win", async () => {
    const me = await person("race");
    const { code, newEmail } = await startAndReceive(me);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => confirm(me, code)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expectCodeRefused(ConnectError.from(r.reason));
    await settle();
    expect(mailsTo(me.email).filter((m) => CHANGED.test(m.subject))).toHaveLength(1);
    expect((await signIn(connect, newEmail, me.ip)).accountId).toBe(me.accountId);
  });

  it("refuses the confirmation when the new address was taken meanwhile (the unique index decides)", async () => {
    const me = await person("late");
    const { code, newEmail } = await startAndReceive(me);
    // Someone signs up with the address before the change is confirmed.
    await connect.call(IdentityService.method.signUp, { email: newEmail, password: PASSWORD }, { "x-forwarded-for": nextIp() });
    const error = await refusal(confirm(me, code));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("EMAIL_TAKEN");
    expect((await signIn(connect, me.email, me.ip)).accountId).toBe(me.accountId);
    const { account } = await connect.call(AccountService.method.getAccount, {}, me.headers);
    expect(account?.email).toBe(me.email);
    await settle();
    expect(mailsTo(me.email).filter((m) => CHANGED.test(m.subject))).toEqual([]);
  });

  it("limits code checks per account with ResourceExhausted and RetryInfo, and lets them through after the window", async () => {
    let me = await person("limit");
    // Every limit window starts afresh at the next whole hour.
    const t = Date.now() + offset;
    offset += (Math.floor(t / HOUR) + 1) * HOUR + 1000 - t;
    me = await signedInAgain(me);
    const { code } = await startAndReceive(me); // a start counts as one attempt of the account
    const wrong = String((Number(code) + 1) % 1e8).padStart(8, "0");
    for (let i = 2; i <= 10; i++) expectCodeRefused(await refusal(check(me, wrong)));

    const limited = await refusal(check(me, wrong));
    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.findDetails(ErrorInfoSchema)[0]?.reason).toBe("RATE_LIMITED");
    const [retry] = limited.findDetails(RetryInfoSchema);
    const delay = Number(retry!.retryDelay!.seconds) * 1000 + retry!.retryDelay!.nanos / 1e6;
    expect(delay).toBeGreaterThan(14 * MINUTE);
    expect(delay).toBeLessThanOrEqual(15 * MINUTE);
    expect(limited.metadata.get("retry-after")).toBe(String(Math.ceil(delay / 1000)));
    // The right code gets the same refusal while limited, and so does a confirmation, over gRPC too.
    expect((await refusal(check(me, code))).code).toBe(Code.ResourceExhausted);
    const grpc = createCaller("grpc-js", server.baseUrl);
    expect(await codeOf(confirm(me, code, grpc))).toBe(Code.ResourceExhausted);
    grpc.close();

    offset += delay + 1000;
    me = await signedInAgain(me);
    const again = await startAndReceive(me); // the first code has expired meanwhile
    expect((await check(me, again.code)).expireTime).toBeDefined();
    await confirm(me, again.code);
    expect((await signIn(connect, again.newEmail, me.ip)).accountId).toBe(me.accountId);
  });

  it("keeps neither address, nor the code, in clear in any table or in Redis while a change is pending", async () => {
    const me = await person("atrest");
    const { code, newEmail } = await startAndReceive(me);
    await server.waitForMail(me.email, (m) => REQUESTED.test(m.subject));
    expect(await server.runtime.ephemeral.tokens.peek(emailChangeCodeKey(me.accountId, code))).toBeDefined();

    let dump = "";
    for (const table of await server.rawTables()) dump += JSON.stringify(await server.rawRows(table));
    if (server.config.redisUrl) {
      const redis = new Redis(REDIS_URL);
      try {
        let values = 0;
        for await (const keys of redis.scanStream({ match: `${server.config.redisKeyPrefix}*`, count: 500 }) as AsyncIterable<string[]>) {
          for (const key of keys) {
            const type = await redis.type(key);
            const value =
              type === "string"
                ? await redis.get(key)
                : type === "set"
                  ? await redis.smembers(key)
                  : type === "hash"
                    ? await redis.hgetall(key)
                    : type === "zset"
                      ? await redis.zrange(key, 0, -1, "WITHSCORES")
                      : type === "list"
                        ? await redis.lrange(key, 0, -1)
                        : type;
            dump += key + JSON.stringify(value);
            values++;
          }
        }
        // The pending change is there (sealed), among the sessions and counters.
        expect(values).toBeGreaterThan(3);
        expect(dump).toContain("change_email");
      } finally {
        redis.disconnect();
      }
    }
    expect(dump.length).toBeGreaterThan(1000);
    for (const email of [me.email, newEmail]) {
      expect(dump.toLowerCase()).not.toContain(email);
      expect(dump.toLowerCase()).not.toContain(email.split("@")[0]!);
    }
    expect(dump).not.toContain(code);
  });
});
