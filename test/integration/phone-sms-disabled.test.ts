// SMS deliberately off (SMS_PROVIDER=none, issue 10): SendSignInCode, AddPhone
// and SendSecondFactorCode answer FailedPrecondition SMS_DISABLED instead of
// queueing codes nobody would deliver, and the outbox holds no phone code.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { type Caller, createCaller, refusal } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

async function reasonOf(promise: Promise<unknown>): Promise<{ code: Code; reason: string | undefined }> {
  const error = await refusal(promise);
  return { code: error.code, reason: error.findDetails(ErrorInfoSchema)[0]?.reason };
}

const disabled = { code: Code.FailedPrecondition, reason: "SMS_DISABLED" };

describe.each(BACKENDS)("SMS_PROVIDER=none on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { SMS_PROVIDER: "none" }, runtime: { deliver: false } });
    api = createCaller("grpc-js", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  it("refuses every SMS code with SMS_DISABLED and queues none", async () => {
    expect(await reasonOf(api.call(SessionService.method.sendSignInCode, { phone: "+33612345678", locale: "en" }))).toStrictEqual(disabled);

    const guest = await api.call(SessionService.method.signIn, { method: { case: "guest", value: {} } });
    const bearer = { authorization: `Bearer ${guest.sessionToken}` };
    expect(await reasonOf(api.call(IdentityService.method.addPhone, { phone: "+33612345679", locale: "en" }, bearer))).toStrictEqual(disabled);

    expect(await reasonOf(api.call(SessionService.method.sendSecondFactorCode, { challenge: "some-challenge" }))).toStrictEqual(disabled);

    expect((await server.rawRows("outbox")).filter((r) => r.kind === "phone_code")).toEqual([]);
    // Bad input still names its field.
    expect((await refusal(api.call(SessionService.method.sendSignInCode, { phone: "not a phone", locale: "en" }))).code).toBe(Code.InvalidArgument);
  });
});
