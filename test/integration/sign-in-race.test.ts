// A sign-in that is checking a password while an admin deactivates the account
// (or a reset changes the password) must not end up with a live session: the
// deactivation ended every session before this one was issued.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import type { StoredAccount } from "../../src/domain/ports/accounts.ts";
import { AccountState } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";

describe.each(BACKENDS)("sign-in racing an account change on the %s backend", (backend) => {
  let server: TestServer;
  let api: Caller;
  beforeAll(async () => {
    server = await startTestServer(backend);
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    api?.close();
    await server?.close();
  });

  async function verified(email: string): Promise<string> {
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD });
    const { accountId } = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    return accountId;
  }

  /** Makes the store report `change` for the account once the sign-in has read it. */
  function changeDuringSignIn(accountId: string, change: Partial<StoredAccount>) {
    const accounts = server.runtime.durable.accounts;
    const { findByIdentity, getAccount } = accounts;
    let changed = false;
    accounts.findByIdentity = async (...args) => {
      const found = await findByIdentity.apply(accounts, args);
      if (found?.account.id === accountId) changed = true; // "meanwhile, an admin acts"
      return found;
    };
    accounts.getAccount = async (...args) => {
      const found = await getAccount.apply(accounts, args);
      return changed && found?.account.id === accountId ? { ...found, account: { ...found.account, ...change } } : found;
    };
    return () => Object.assign(accounts, { findByIdentity, getAccount });
  }

  it.each([
    ["deactivated", { state: AccountState.DEACTIVATED }, Code.FailedPrecondition],
    ["given a new password", { passwordHash: "$argon2id$v=19$m=19456,t=2,p=1$changed$changed" }, Code.Unauthenticated],
  ] as const)("refuses and leaves no session when the account is %s meanwhile", async (_what, change, code) => {
    const email = `race.${Date.now()}.${Math.random().toString(36).slice(2)}@example.test`;
    const accountId = await verified(email);
    const before = (await server.runtime.ephemeral.sessions.listForAccount(accountId)).length;
    const restore = changeDuringSignIn(accountId, change);
    try {
      expect(await codeOf(api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } }))).toBe(code);
    } finally {
      restore();
    }
    expect((await server.runtime.ephemeral.sessions.listForAccount(accountId)).length).toBe(before);
    // Without a change, the same sign-in works.
    await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
  });
});
