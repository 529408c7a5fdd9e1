// Passkey RPCs over a real server on every backend (the ceremonies' challenges
// live in the ephemeral store: Redis or in-process): the options name the
// tenant's relying party and carry a fresh challenge; bad answers are
// InvalidArgument naming the field; an answer to no challenge of ours, or to a
// used one, is refused. The ceremonies with a real authenticator run in
// Chromium: test/browser/passkeys.test.ts.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { type Caller, createCaller, refusal } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const b64 = (value: string | object) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
/** An assertion-shaped answer for `challenge` that no authenticator signed. */
const forged = (challenge: string, userHandle: string) =>
  JSON.stringify({
    id: "AAAA",
    rawId: "AAAA",
    type: "public-key",
    clientExtensionResults: {},
    response: {
      clientDataJSON: b64({ type: "webauthn.get", challenge, origin: "https://app.example.test" }),
      authenticatorData: b64("x".repeat(37)),
      signature: b64("sig"),
      userHandle: b64(userHandle),
    },
  });

describe.each(BACKENDS)("passkey RPCs (%s)", (backend) => {
  let server: TestServer;
  let api: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  const field = async (promise: Promise<unknown>) => {
    const error = await refusal(promise);
    expect(error.code).toBe(Code.InvalidArgument);
    return error.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field;
  };
  const reason = async (promise: Promise<unknown>) => {
    const error = await refusal(promise);
    return `${Code[error.code]} ${error.findDetails(ErrorInfoSchema)[0]?.reason}`;
  };

  it("StartPasskeySignIn: options for the tenant's relying party with a fresh challenge; a forged or replayed answer is refused", async () => {
    const first = JSON.parse((await api.call(SessionService.method.startPasskeySignIn, {})).optionsJson) as {
      rpId: string;
      challenge: string;
      userVerification: string;
    };
    const second = JSON.parse((await api.call(SessionService.method.startPasskeySignIn, {})).optionsJson) as { challenge: string };
    expect(first).toMatchObject({ rpId: "app.example.test", userVerification: "required" });
    expect(first.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(second.challenge).not.toBe(first.challenge);

    const signIn = (responseJson: string) => api.call(SessionService.method.signIn, { method: { case: "passkey", value: { responseJson } } });
    expect(await field(signIn(""))).toBe("passkey.response_json");
    expect(await field(signIn("not json"))).toBe("passkey.response_json");
    expect(await field(signIn(JSON.stringify({ id: "x", response: {} })))).toBe("passkey.response_json");
    expect(await reason(signIn(forged("never-issued", "0197a1b2-0000-7000-8000-000000000000")))).toBe("Unauthenticated INVALID_CREDENTIALS");
    expect(await reason(signIn(forged(first.challenge, "0197a1b2-0000-7000-8000-000000000000")))).toBe("Unauthenticated INVALID_CREDENTIALS");
    // Refusals are recorded as failed sign-ins (malformed input is not).
    const outcomes = async () =>
      (await server.runtime.app.audit.list({ tenantId: "default", action: "session.sign_in_passkey_failed", pageSize: 10, pageToken: "" })).events.map(
        (e) => e.outcome,
      );
    await expect.poll(outcomes).toEqual(["INVALID_CREDENTIALS", "INVALID_CREDENTIALS"]);
  });

  it("registration needs a session; bad answers name response_json; an answer to no registration of ours is refused", async () => {
    expect((await refusal(api.call(AccountService.method.startPasskeyRegistration, {}))).code).toBe(Code.Unauthenticated);
    const email = `passkey.rpc.${Date.now()}@example.test`;
    await api.call(IdentityService.method.signUp, { email, password: "correct horse battery staple" });
    const { sessionToken } = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    const auth = { authorization: `Bearer ${sessionToken}` };
    const options = JSON.parse((await api.call(AccountService.method.startPasskeyRegistration, {}, auth)).optionsJson) as {
      rp: { id: string };
      user: { name: string };
      authenticatorSelection: { residentKey: string; userVerification: string };
    };
    expect(options).toMatchObject({
      rp: { id: "app.example.test" },
      user: { name: email },
      authenticatorSelection: { residentKey: "required", userVerification: "required" },
    });
    const finish = (responseJson: string) => api.call(AccountService.method.finishPasskeyRegistration, { responseJson }, auth);
    expect(await field(finish(""))).toBe("response_json");
    expect(await field(finish("[1]"))).toBe("response_json");
    expect(await reason(finish(forged("never-issued", "")))).toBe("Unauthenticated INVALID_SECOND_FACTOR");
    // CompleteSecondFactor with an empty passkey answer names its field.
    expect(await field(api.call(SessionService.method.completeSecondFactor, { challenge: "CH", code: { case: "passkeyResponseJson", value: "" } }))).toBe(
      "passkey_response_json",
    );
  });
});
