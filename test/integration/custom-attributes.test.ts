// Per-field profile access (coolsignup's get-user-fields / set-user-fields),
// over a real server on every backend: UpdateAccount's mask names single custom
// attributes ("custom_attributes.favoriteColor") to set or remove them without
// replacing the block; GetAccount's read_mask and SignIn's profile_mask read
// single ones; and two clients updating different attributes at the same time
// (separate connections, truly concurrent requests) never lose one another.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, type Caller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `attrs.${tag}.${Date.now()}.${seq++}@example.test`;

describe.each(BACKENDS)("single custom attributes on the %s backend", (backend) => {
  let server: TestServer;
  let grpc: Caller;
  let api: Caller;

  beforeAll(async () => {
    server = await startTestServer(backend);
    grpc = createCaller("grpc-js", server.baseUrl);
    api = createCaller("connect-json-h1", server.baseUrl);
  });
  afterAll(async () => {
    grpc?.close();
    api?.close();
    await server?.close();
  });

  async function person(tag: string) {
    const email = uniqueEmail(tag);
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const verified = await api.call(IdentityService.method.verifyIdentity, { token: linkToken((await server.waitForMail(email)).text) });
    return { email, bearer: { authorization: `Bearer ${verified.sessionToken}` } };
  }

  const attributesOf = async (caller: Caller, bearer: Record<string, string>) =>
    (await caller.call(AccountService.method.getAccount, {}, bearer)).account!.customAttributes;

  it("sets, replaces and removes one attribute, leaving the others; reads single ones through GetAccount and SignIn", async () => {
    const { email, bearer } = await person("single");
    await grpc.call(
      AccountService.method.updateAccount,
      { account: { customAttributes: { plan: "family", seats: 4 } }, updateMask: { paths: ["custom_attributes"] } },
      bearer,
    );
    // Over binary protobuf the key travels verbatim, capitals included.
    await grpc.call(
      AccountService.method.updateAccount,
      { account: { customAttributes: { favoriteColor: "teal", seats: 999 } }, updateMask: { paths: ["custom_attributes.favoriteColor"] } },
      bearer,
    );
    expect(await attributesOf(grpc, bearer)).toEqual({ plan: "family", seats: 4, favoriteColor: "teal" });
    // Named without a value: removed.
    await grpc.call(AccountService.method.updateAccount, { account: {}, updateMask: { paths: ["custom_attributes.plan"] } }, bearer);
    expect(await attributesOf(grpc, bearer)).toEqual({ seats: 4, favoriteColor: "teal" });

    const read = await grpc.call(AccountService.method.getAccount, { readMask: { paths: ["custom_attributes.favoriteColor", "locale"] } }, bearer);
    expect(read.account?.customAttributes).toEqual({ favoriteColor: "teal" });
    expect(read.account?.locale).toBe("en");
    expect(read.account?.email).toBe("");
    const signedIn = await grpc.call(SessionService.method.signIn, {
      method: { case: "emailPassword", value: { email, password: PASSWORD } },
      profileMask: { paths: ["custom_attributes.seats", "custom_attributes.absent"] },
    });
    expect(signedIn.profile?.customAttributes).toEqual({ seats: 4 });

    // Refused, naming the field, and nothing changes.
    for (const paths of [["custom_attributes", "custom_attributes.seats"], [`custom_attributes.${"k".repeat(65)}`], ["custom_attributes."]]) {
      expect(await codeOf(grpc.call(AccountService.method.updateAccount, { account: {}, updateMask: { paths } }, bearer))).toBe(Code.InvalidArgument);
    }
    expect(await codeOf(grpc.call(AccountService.method.getAccount, { readMask: { paths: ["password_hash"] } }, bearer))).toBe(Code.InvalidArgument);
    expect(await attributesOf(grpc, bearer)).toEqual({ seats: 4, favoriteColor: "teal" });
  });

  it("two clients updating different attributes at the same time both land, every time", async () => {
    const { email, bearer } = await person("race");
    // A second session of the same person, on another connection and protocol.
    const other = await api.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } });
    const otherBearer = { authorization: `Bearer ${other.sessionToken}` };
    const second = createCaller("grpc-js", server.baseUrl);
    try {
      const ROUNDS = 15;
      const writer = async (caller: Caller, auth: Record<string, string>, side: string) => {
        for (let i = 0; i < ROUNDS; i++) {
          // Lower-case letters only: JSON field masks camelCase every path (a key with "_" or capitals would not survive).
          const key = `${side}${String.fromCharCode(97 + i)}`;
          await caller.call(
            AccountService.method.updateAccount,
            { account: { customAttributes: { [key]: i } }, updateMask: { paths: [`custom_attributes.${key}`] } },
            auth,
          );
        }
      };
      // Both sides start together and write in lockstep: most writes race the other side's.
      await Promise.all([writer(grpc, bearer, "left"), writer(second, otherBearer, "right"), writer(api, otherBearer, "middle")]);
      const attributes = (await attributesOf(grpc, bearer)) as Record<string, number>;
      for (const side of ["left", "right", "middle"])
        for (let i = 0; i < ROUNDS; i++) expect(attributes[`${side}${String.fromCharCode(97 + i)}`], `${side} ${i}`).toBe(i);
      expect(Object.keys(attributes)).toHaveLength(3 * ROUNDS);
    } finally {
      second.close();
    }
  });
});
