// Account enumeration, from the outside: nobody learns whether an address is
// registered (or in which state) without its password. SignUp answers a taken
// address exactly like a fresh one (and tells the owner by email); SignIn
// answers an unknown address exactly like a wrong password, after the same
// argon2 work; an unverified account's state is revealed only with the right
// password.
import { toBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { IdentityService, SignUpResponseSchema } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller, refusal } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
const WRONG = "incorrect horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `enum.${tag}.${Date.now()}.${seq++}@example.test`;

const isVerification = (m: { text: string }) => m.text.includes("verify-email?token=");
const isSignUpNotice = (m: { subject: string; text: string }) => m.subject.startsWith("Someone tried to create") && !m.text.includes("token=");

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

describe.each(BACKENDS)("enumeration on the %s backend", (backend) => {
  let server: TestServer;
  let connect: ReturnType<typeof createClientsFor>;
  let grpc: ReturnType<typeof createClientsFor>;
  const verified = uniqueEmail("verified");
  const unverified = uniqueEmail("unverified");

  function createClientsFor(transport: ReturnType<typeof createConnectTransport>) {
    return { identity: createClient(IdentityService, transport), session: createClient(SessionService, transport) };
  }

  /** A raw Connect JSON call: the exact status, headers and bytes on the wire. */
  async function rawCall(path: string, body: unknown) {
    const res = await fetch(`${server.baseUrl}/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const headers = [...res.headers].filter(([name]) => name !== "date");
    return { status: res.status, headers, body: await res.text() };
  }
  const rawSignUp = (email: string) => rawCall("identity.v1.IdentityService/SignUp", { email, password: PASSWORD });
  const rawSignIn = (email: string, password: string) => rawCall("identity.v1.SessionService/SignIn", { emailPassword: { email, password } });
  const signIn = (email: string, password: string, forwardedFor?: string) =>
    connect.session.signIn(
      { method: { case: "emailPassword", value: { email, password } } },
      forwardedFor ? { headers: { "x-forwarded-for": forwardedFor } } : {},
    );

  beforeAll(async () => {
    // One trusted proxy, so the timing test can use client IPs of its own.
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" } });
    connect = createClientsFor(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    grpc = createClientsFor(createGrpcTransport({ baseUrl: server.baseUrl }));
    await connect.identity.signUp({ email: verified, password: PASSWORD });
    await connect.identity.verifyIdentity({ token: linkToken((await server.waitForMail(verified, isVerification)).text) });
    await connect.identity.signUp({ email: unverified, password: PASSWORD });
    await server.waitForMail(unverified, isVerification);
  });
  afterAll(async () => {
    await server?.close();
  });

  it("answers SignUp for a taken address byte for byte like a fresh one over Connect JSON", async () => {
    const fresh = uniqueEmail("fresh");
    const forFresh = await rawSignUp(fresh);
    const forTaken = await rawSignUp(verified);
    expect(forFresh.status).toBe(200);
    expect(forTaken).toEqual(forFresh);
    expect(forTaken.body).toBe("{}");
    // The fresh address gets a verification link; the owner of the taken one a notice without any link token.
    await server.waitForMail(fresh, isVerification);
    await server.waitForMail(verified, isSignUpNotice);
  });

  it("answers SignUp for a taken address like a fresh one over gRPC and grpc-js", async () => {
    const fresh = uniqueEmail("fresh-grpc");
    const forFresh = await grpc.identity.signUp({ email: fresh, password: PASSWORD });
    const forTaken = await grpc.identity.signUp({ email: verified, password: PASSWORD });
    expect(toBinary(SignUpResponseSchema, forTaken)).toEqual(toBinary(SignUpResponseSchema, forFresh));
    expect(toBinary(SignUpResponseSchema, forTaken)).toHaveLength(0);
    const grpcJs = createCaller("grpc-js", server.baseUrl);
    try {
      const freshJs = uniqueEmail("fresh-grpc-js");
      expect(await grpcJs.call(IdentityService.method.signUp, { email: freshJs, password: PASSWORD })).toEqual(
        await grpcJs.call(IdentityService.method.signUp, { email: verified, password: PASSWORD }),
      );
      await server.waitForMail(freshJs, isVerification);
    } finally {
      grpcJs.close();
    }
    await server.waitForMail(fresh, isVerification);
  });

  it("sent the owner of the taken address notices, never a second verification link", async () => {
    // Three attempts above; messages per address are capped at 5 an hour, so all are delivered.
    const deadline = Date.now() + 10_000;
    const toOwner = () => server.inbox.filter((m) => m.envelopeTo.includes(verified));
    while (toOwner().filter(isSignUpNotice).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(toOwner().filter(isSignUpNotice)).toHaveLength(3);
    expect(toOwner().filter(isVerification)).toHaveLength(1); // the original sign-up's
    expect(toOwner()).toHaveLength(4);
    // The notice carries no secret the requester could use.
    for (const notice of toOwner().filter(isSignUpNotice)) expect(notice.text).not.toMatch(/token=|code/i);
  });

  it("answers SignIn for an unknown address exactly like a wrong password", async () => {
    const unknown = await rawSignIn(uniqueEmail("unknown"), PASSWORD);
    const wrong = await rawSignIn(verified, WRONG);
    expect(unknown.status).toBe(401);
    expect(wrong).toEqual(unknown);

    for (const client of [connect, grpc]) {
      const a = await refusal(client.session.signIn({ method: { case: "emailPassword", value: { email: uniqueEmail("unknown"), password: PASSWORD } } }));
      const b = await refusal(client.session.signIn({ method: { case: "emailPassword", value: { email: verified, password: WRONG } } }));
      expect(a.code).toBe(Code.Unauthenticated);
      expect(b.code).toBe(Code.Unauthenticated);
      expect(b.rawMessage).toBe(a.rawMessage);
      expect(a.findDetails(ErrorInfoSchema)).toEqual(b.findDetails(ErrorInfoSchema));
      expect(a.findDetails(ErrorInfoSchema)[0]?.reason).toBe("INVALID_CREDENTIALS");
      expect(a.details).toHaveLength(1); // nothing else to compare
    }
  });

  it("reveals an unverified account's state only to the right password", async () => {
    const right = await refusal(signIn(unverified, PASSWORD));
    expect(right.code).toBe(Code.FailedPrecondition);
    expect(right.findDetails(ErrorInfoSchema)[0]?.reason).toBe("IDENTITY_UNVERIFIED");

    const wrong = await rawSignIn(unverified, WRONG);
    const unknown = await rawSignIn(uniqueEmail("unknown"), WRONG);
    expect(wrong).toEqual(unknown);
    const wrongOverGrpc = await refusal(grpc.session.signIn({ method: { case: "emailPassword", value: { email: unverified, password: WRONG } } }));
    expect(wrongOverGrpc.code).toBe(Code.Unauthenticated);
    expect(wrongOverGrpc.findDetails(ErrorInfoSchema)[0]?.reason).toBe("INVALID_CREDENTIALS");
  });

  it("takes about as long for an unknown address as for a wrong password", async () => {
    // Both paths run one argon2id verification (19 MiB, t=2), tens of milliseconds that dwarf the
    // rest; without it an unknown address would answer ~10× faster. Timing on a shared machine is
    // noisy, so: pairs measured back to back in alternating order (load slows both sides of a pair
    // alike), the median of the per-pair ratios, and up to 3 rounds, of which one must be within 1.5×.
    const summaries: string[] = [];
    for (let round = 0; round < 3; round++) {
      // Each round from its own client IP (via the trusted proxy) and with accounts of its own, so
      // neither the per-IP nor the per-address sign-in limit is reached.
      const ip = `192.0.2.${10 + round}`;
      const known: string[] = [];
      for (const tag of ["timing-a", "timing-b"]) {
        const email = uniqueEmail(tag);
        await connect.identity.signUp({ email, password: PASSWORD });
        await connect.identity.verifyIdentity({ token: linkToken((await server.waitForMail(email, isVerification)).text) });
        known.push(email);
      }
      const time = async (email: string) => {
        const started = performance.now();
        const error = await refusal(signIn(email, WRONG, ip));
        const elapsed = performance.now() - started;
        expect(error.code).toBe(Code.Unauthenticated);
        return elapsed;
      };
      // Warm up both paths (the dummy hash for unknown addresses is computed on first use).
      await time(uniqueEmail("timing-unknown"));
      for (const email of known) await time(email);
      const ratios: number[] = [];
      const unknownTimes: number[] = [];
      const knownTimes: number[] = [];
      for (let i = 0; i < 10; i++) {
        const unknownFirst = i % 2 === 0;
        const first = unknownFirst ? await time(uniqueEmail("timing-unknown")) : 0;
        const k = await time(known[i % 2]!);
        const u = unknownFirst ? first : await time(uniqueEmail("timing-unknown"));
        unknownTimes.push(u);
        knownTimes.push(k);
        ratios.push(k / u);
      }
      const ratio = median(ratios);
      summaries.push(`round ${round + 1}: unknown ${median(unknownTimes).toFixed(1)} ms, known ${median(knownTimes).toFixed(1)} ms, ratio ${ratio.toFixed(2)}`);
      expect(median(unknownTimes), summaries.join("; ")).toBeGreaterThan(5);
      if (ratio > 1 / 1.5 && ratio < 1.5) return;
    }
    expect.fail(`sign-in timing differs between unknown and known addresses (median ratio known/unknown): ${summaries.join("; ")}`);
  });
});
