// Sign-in rate limits on a real server, with an injected clock: per address
// from one client IP (10 per 15 min, then 20 per hour, 40 per day) whatever
// the password, and per client IP (100 per 15 min) as seen through one trusted
// proxy (TRUSTED_PROXIES=1, X-Forwarded-For). A refusal is ResourceExhausted
// with google.rpc.RetryInfo and a Retry-After header, and reveals nothing.
// Another IP is never refused for the address's sake (rate-limits-lockout.test.ts).
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";
import { refusal } from "../support/clients.ts";

const PASSWORD = "correct horse battery staple";
const WRONG = "incorrect horse battery staple";
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
let seq = 0;
const uniqueEmail = (tag: string) => `limits.${tag}.${Date.now()}.${seq++}@example.test`;

/** The RetryInfo delay of a refusal, in milliseconds. */
function retryDelayMs(error: ConnectError): number {
  const [info] = error.findDetails(RetryInfoSchema);
  expect(info?.retryDelay).toBeDefined();
  return Number(info!.retryDelay!.seconds) * 1000 + info!.retryDelay!.nanos / 1e6;
}

function expectRateLimited(error: ConnectError): void {
  expect(error.code).toBe(Code.ResourceExhausted);
  expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe("RATE_LIMITED");
}

describe.each(BACKENDS)("sign-in rate limits on the %s backend", (backend) => {
  let server: TestServer;
  let offset = 0;
  let session: ReturnType<typeof createClient<typeof SessionService>>;
  const target = uniqueEmail("target");
  const bystander = uniqueEmail("bystander");

  /** Moves the server's clock to just after the next whole hour: every limit window starts afresh there. */
  function startOfNextHour() {
    const t = Date.now() + offset;
    offset += (Math.floor(t / HOUR) + 1) * HOUR + 1000 - t;
  }

  const signIn = (email: string, password: string, forwardedFor?: string) =>
    session.signIn({ method: { case: "emailPassword", value: { email, password } } }, forwardedFor ? { headers: { "x-forwarded-for": forwardedFor } } : {});

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" }, runtime: { now: () => Date.now() + offset } });
    const transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" });
    session = createClient(SessionService, transport);
    const identity = createClient(IdentityService, transport);
    for (const email of [target, bystander]) {
      await identity.signUp({ email, password: PASSWORD });
      await identity.verifyIdentity({ token: linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text) });
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  it("limits sign-ins per address, right password included, until the window has passed, then per hour", async () => {
    startOfNextHour();
    for (let i = 1; i <= 10; i++) {
      expect((await refusal(signIn(target, WRONG))).code, `attempt ${i}`).toBe(Code.Unauthenticated);
    }

    const limited = await refusal(signIn(target, WRONG));
    expectRateLimited(limited);
    const delay = retryDelayMs(limited);
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(15 * MINUTE);
    const retryAfter = limited.metadata.get("retry-after");
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBe(Math.ceil(delay / 1000));

    // No oracle: the right password gets the very same answer while limited, from the limited IP.
    const right = await refusal(signIn(target, PASSWORD));
    expectRateLimited(right);
    expect(right.rawMessage).toBe(limited.rawMessage);
    expect(right.findDetails(ErrorInfoSchema)).toEqual(limited.findDetails(ErrorInfoSchema));
    // No lockout (issue 9): the owner from another IP signs in, slowed down, not refused.
    expect((await signIn(target, PASSWORD, "198.51.100.20")).sessionToken).not.toBe("");
    // Over gRPC as well, with the RetryInfo detail.
    const overGrpc = await refusal(
      createClient(SessionService, createGrpcTransport({ baseUrl: server.baseUrl })).signIn({
        method: { case: "emailPassword", value: { email: target, password: WRONG } },
      }),
    );
    expectRateLimited(overGrpc);
    expect(retryDelayMs(overGrpc)).toBeGreaterThan(0);

    // The counter is the address's: another address from the same IP signs in.
    expect((await signIn(bystander, PASSWORD)).sessionToken).not.toBe("");

    // 16 minutes later the 15-minute window has passed.
    offset += 16 * MINUTE;
    expect((await signIn(target, PASSWORD)).sessionToken).not.toBe("");
    // That correct password was refunded (only failures count); one more wrong one is the 14th attempt counted.
    expect((await refusal(signIn(target, WRONG))).code, "attempt 14").toBe(Code.Unauthenticated);

    // Then the hourly tier (twice the base): 14 attempts on the target from this IP this hour so far, 20 allowed.
    for (let i = 15; i <= 20; i++) {
      expect((await refusal(signIn(target, WRONG))).code, `attempt ${i}`).toBe(Code.Unauthenticated);
    }
    const hourly = await refusal(signIn(target, WRONG));
    expectRateLimited(hourly);
    // 16 min into the hour: the hourly window ends in about 44 minutes.
    expect(retryDelayMs(hourly)).toBeGreaterThan(15 * MINUTE);
    expect(retryDelayMs(hourly)).toBeLessThanOrEqual(44 * MINUTE);
    startOfNextHour();
    expect((await signIn(target, PASSWORD)).sessionToken).not.toBe("");
  });

  it("limits sign-ins per client IP as forwarded by the trusted proxy", async () => {
    startOfNextHour();
    const noisy = "203.0.113.7";
    // 100 failing sign-ins for unknown addresses (each one argon2 verification), 10 at a time.
    const answers: Code[] = [];
    for (let batch = 0; batch < 10; batch++) {
      answers.push(...(await Promise.all(Array.from({ length: 10 }, async () => (await refusal(signIn(uniqueEmail("ip"), WRONG, noisy))).code))));
    }
    expect(answers).toEqual(Array(100).fill(Code.Unauthenticated));

    const limited = await refusal(signIn(uniqueEmail("ip"), WRONG, noisy));
    expectRateLimited(limited);
    expect(retryDelayMs(limited)).toBeGreaterThan(0);
    expect(retryDelayMs(limited)).toBeLessThanOrEqual(15 * MINUTE);
    // A hop the client wrote itself in front changes nothing: the proxy's last hop is the client IP.
    expectRateLimited(await refusal(signIn(bystander, PASSWORD, `198.51.100.99, ${noisy}`)));

    // Another client IP, and the direct peer, are unaffected.
    expect((await refusal(signIn(uniqueEmail("ip"), WRONG, "203.0.113.8"))).code).toBe(Code.Unauthenticated);
    expect((await signIn(bystander, PASSWORD, "203.0.113.8")).sessionToken).not.toBe("");
    expect((await signIn(bystander, PASSWORD)).sessionToken).not.toBe("");
  });
});
