// Small helpers of the service tier: a verified person and a platform super
// admin, made through the same RPCs and domain a client uses.
import { Code, type ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { refusal } from "../support/clients.ts";
import { linkToken } from "../support/server.ts";
import type { ServiceHarness } from "./harness.ts";

export const PASSWORD = "correct horse battery staple";
let seq = 0;
export const uniqueEmail = (tag: string) => `svc.${tag}.${Date.now()}.${seq++}@example.test`;

/** Signs up, verifies with the link mailed through the outbox, and returns the session. */
export async function verifiedPerson(h: ServiceHarness, tag: string): Promise<{ email: string; token: string; accountId: string }> {
  const email = uniqueEmail(tag);
  await h.client(IdentityService).signUp({ email, password: PASSWORD });
  const mail = await h.lastMailTo(email);
  const verified = await h.client(IdentityService).verifyIdentity({ token: linkToken(mail.text) });
  return { email, token: verified.sessionToken, accountId: verified.accountId };
}

/** A platform super admin (bootstrapped as the admin CLI does), signed in. */
export async function superAdmin(h: ServiceHarness): Promise<{ token: string; accountId: string }> {
  const email = uniqueEmail("root");
  const { accountId } = await h.runtime.bootstrap.createSuperAdmin({ email, password: PASSWORD, promote: false });
  const signedIn = await h.client(SessionService).signIn({ method: { case: "emailPassword", value: { email, password: PASSWORD } } });
  return { token: signedIn.sessionToken, accountId };
}

/** Expects the call refused with `code` and the ErrorInfo `reason`; returns the error. */
export async function expectRefused(call: Promise<unknown>, code: Code, reason?: string): Promise<ConnectError> {
  const error = await refusal(call);
  expect(Code[error.code], error.rawMessage).toBe(Code[code]);
  if (reason !== undefined) expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe(reason);
  return error;
}
