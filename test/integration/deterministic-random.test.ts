// Randomness is injected beside the clock (RuntimeOptions.random): two servers
// given the same seed and the same clock make the same ids and the same link
// token for the same sign-up, so a test can predict them; the default stays
// the CSPRNG (test/unit/one-time-tokens.test.ts).
import { afterAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { createCaller } from "../support/clients.ts";
import { seededRandom } from "../support/random.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const T0 = Date.UTC(2030, 0, 1);
const EMAIL = "seeded@example.test";

describe("a seeded Random", () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  async function signUpOn(seed: string) {
    const server = await startTestServer("embedded", { runtime: { now: () => T0, random: seededRandom(seed) } });
    servers.push(server);
    const caller = createCaller("connect-json-h1", server.baseUrl);
    try {
      await caller.call(IdentityService.method.signUp, { email: EMAIL, password: "correct horse battery staple", locale: "en" }, {});
      const token = linkToken((await server.waitForMail(EMAIL)).text);
      const verified = (await caller.call(IdentityService.method.verifyIdentity, { token }, {})) as { sessionToken: string };
      const accounts = await server.rawRows("accounts");
      const identities = await server.rawRows("identities");
      const outbox = await server.rawRows("outbox");
      return {
        token,
        sessionToken: verified.sessionToken,
        accountIds: accounts.map((r) => r.id),
        identityIds: identities.map((r) => r.id),
        messageIds: outbox.map((r) => r.id),
      };
    } finally {
      caller.close();
    }
  }

  it("makes the same account, identity and message ids, link token and session token on every run", async () => {
    const first = await signUpOn("seed-1");
    const again = await signUpOn("seed-1");
    const other = await signUpOn("seed-2");
    expect(first.accountIds).toHaveLength(1);
    expect(again).toEqual(first);
    expect(first.sessionToken).toMatch(/^.+\..{43}$/);
    expect(other.token).not.toBe(first.token);
    expect(other.sessionToken).not.toBe(first.sessionToken);
    expect(other.accountIds).not.toEqual(first.accountIds);
  });
});
