// The profile, end to end over a real server on every backend and protocol:
// UpdateAccount with a field mask changes exactly the named fields; immutable,
// unknown and oversized input is refused naming the field, and changes nothing;
// push tokens are added, replaced per device and removed; SignIn's profile_mask
// still returns what was stored; and none of it is readable in the database.
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import type { Account, AccountSchema } from "../../gen/identity/v1/common_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, type Caller, type Protocol, refusal as refused } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `profile.${tag}.${Date.now()}.${seq++}@example.test`;

/** The refusal of a call: its code, its message (grpc-js leaves some characters percent-encoded) and, where the protocol carries them to this client, the BadRequest fields. */
async function refusal(promise: Promise<unknown>): Promise<{ code: Code; message: string; fields: string[] | undefined }> {
  const error = await refused(promise);
  const [badRequest] = error.findDetails(BadRequestSchema);
  return { code: error.code, message: decodeURIComponent(error.rawMessage), fields: badRequest?.fieldViolations.map((v) => v.field) };
}

/** What a person can see of their account, without the update time. */
const visible = (account: Account | undefined) => {
  const { updateTime: _u, $typeName: _t, ...rest } = account!;
  return rest;
};

describe.each(BACKENDS)("the profile on the %s backend", (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend);
  });
  afterAll(async () => {
    await server?.close();
  });

  async function signedIn(api: Caller, tag: string) {
    const email = uniqueEmail(tag);
    await api.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en" });
    const token = linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text);
    const verified = await api.call(IdentityService.method.verifyIdentity, { token });
    return { email, bearer: { authorization: `Bearer ${verified.sessionToken}` }, sessionToken: verified.sessionToken };
  }

  describe.each(PROTOCOLS)("over %s", (protocol: Protocol) => {
    let api: Caller;
    beforeAll(() => {
      api = createCaller(protocol, server.baseUrl);
    });
    afterAll(() => api.close());

    const get = async (bearer: Record<string, string>) => (await api.call(AccountService.method.getAccount, {}, bearer)).account!;

    it("changes only the fields named in the mask, and returns the account as GetAccount then shows it", async () => {
      const { email, bearer } = await signedIn(api, `mask-${protocol}`);
      const before = await get(bearer);

      const first = await api.call(
        AccountService.method.updateAccount,
        {
          account: { displayName: "  Zoë Ångström  ", pronouns: "she/her", locale: "fr", email: "someone.else@example.test" },
          updateMask: { paths: ["display_name"] },
        },
        bearer,
      );
      expect(first.account?.displayName).toBe("Zoë Ångström"); // trimmed
      expect(first.account?.pronouns).toBe(""); // not in the mask
      expect(first.account?.locale).toBe("en");
      expect(first.account?.email).toBe(email);
      expect(visible(first.account)).toStrictEqual({ ...visible(before), displayName: "Zoë Ångström" });
      expect(Number(first.account?.updateTime?.seconds) * 1000 + Number(first.account?.updateTime?.nanos) / 1e6).toBeGreaterThanOrEqual(
        Number(before.updateTime?.seconds) * 1000 + Number(before.updateTime?.nanos) / 1e6,
      );
      expect(visible(await get(bearer))).toStrictEqual(visible(first.account));

      const attributes = { team: "blue", level: 3, beta: true, tags: ["a", "b"], nested: { deeper: { deepest: { value: null } } } };
      const second = await api.call(
        AccountService.method.updateAccount,
        {
          account: { displayName: "ignored", pronouns: "they/them", locale: "fr-CA", customAttributes: attributes },
          updateMask: { paths: ["pronouns", "locale", "custom_attributes"] },
        },
        bearer,
      );
      expect(visible(second.account)).toStrictEqual({ ...visible(first.account), pronouns: "they/them", locale: "fr", customAttributes: attributes });
      expect(visible(await get(bearer))).toStrictEqual(visible(second.account));

      // Named but empty: cleared (the locale goes back to the tenant's default).
      const cleared = await api.call(
        AccountService.method.updateAccount,
        { account: {}, updateMask: { paths: ["pronouns", "custom_attributes", "locale"] } },
        bearer,
      );
      expect(visible(cleared.account)).toStrictEqual({ ...visible(second.account), pronouns: "", customAttributes: {}, locale: "en" });
    });

    it("refuses immutable and unknown paths, an empty mask and bad values, naming the field, and changes nothing", async () => {
      const { bearer } = await signedIn(api, `refuse-${protocol}`);
      const original = await api.call(
        AccountService.method.updateAccount,
        {
          account: { displayName: "Original", pronouns: "he/him", customAttributes: { keep: "me" } },
          updateMask: { paths: ["display_name", "pronouns", "custom_attributes"] },
        },
        bearer,
      );
      const attempt = (paths: string[] | undefined, account: MessageInitShape<typeof AccountSchema> = { displayName: "Changed" }) =>
        refusal(api.call(AccountService.method.updateAccount, { account, ...(paths && { updateMask: { paths } }) }, bearer));
      const expectRefused = async (result: ReturnType<typeof attempt>, field: string, mentions: string) => {
        const { code, message, fields } = await result;
        expect(code).toBe(Code.InvalidArgument);
        expect(message).toContain(field);
        expect(message).toContain(mentions);
        if (fields) expect(fields).toStrictEqual([field]);
      };

      const immutable = ["id", "tenant_id", "email", "role", "state", "email_verified", "create_time", "update_time", "subscription", "push_tokens"];
      for (const path of [...immutable, "nickname", "display_name.first", "*"]) {
        // Alongside an updatable path, so a partial update would show.
        await expectRefused(
          attempt(["display_name", path], { displayName: "Changed", email: "x@example.test", role: 3, id: "forged" }),
          "update_mask",
          `"${path}"`,
        );
      }
      await expectRefused(attempt([]), "update_mask", "update_mask");
      await expectRefused(attempt(undefined), "update_mask", "update_mask");

      const tooLong = { name: "x".repeat(201), pronouns: "p".repeat(51) };
      await expectRefused(attempt(["pronouns", "display_name"], { displayName: tooLong.name }), "account.display_name", "200");
      await expectRefused(attempt(["display_name"], { displayName: "Bob\u0000" }), "account.display_name", "control");
      await expectRefused(attempt(["display_name"], { displayName: "abc\u202Egpj.exe" }), "account.display_name", "control");
      await expectRefused(attempt(["display_name", "pronouns"], { pronouns: tooLong.pronouns }), "account.pronouns", "50");
      await expectRefused(attempt(["display_name", "locale"], { displayName: "Changed", locale: "it" }), "account.locale", "supported");

      const custom = (customAttributes: JsonObject) => attempt(["display_name", "custom_attributes"], { displayName: "Changed", customAttributes });
      await expectRefused(custom(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))), "account.custom_attributes", "50 keys");
      await expectRefused(custom({ big: "x".repeat(8 * 1024) }), "account.custom_attributes", "8192 bytes");
      await expectRefused(custom({ a: { b: { c: { d: { e: { f: 1 } } } } } }), "account.custom_attributes", "5 levels");
      await expectRefused(custom({ a: [[[[["too deep"]]]]] }), "account.custom_attributes", "5 levels");
      await expectRefused(custom({ ["k".repeat(65)]: 1 }), "account.custom_attributes", "keys");

      expect(visible(await get(bearer))).toStrictEqual(visible(original.account));

      // The bounds themselves are allowed.
      const atBounds = {
        ...Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, i])),
        deep: { b: { c: { d: { e: 1 } } } },
      };
      const accepted = await api.call(
        AccountService.method.updateAccount,
        {
          account: { displayName: "é".repeat(200), pronouns: "p".repeat(50), customAttributes: atBounds },
          updateMask: { paths: ["display_name", "pronouns", "custom_attributes"] },
        },
        bearer,
      );
      expect(accepted.account?.displayName).toBe("é".repeat(200));
      expect(accepted.account?.customAttributes).toStrictEqual(atBounds);
    });

    it("adds, replaces per device and removes push tokens, validating each field", async () => {
      const { bearer } = await signedIn(api, `push-${protocol}`);
      const add = (pushToken: { deviceId: string; platform: string; token: string }) => api.call(AccountService.method.addPushToken, { pushToken }, bearer);
      const tokens = async () => (await get(bearer)).pushTokens.map((t) => [t.deviceId, t.platform, t.token]).sort();

      await add({ deviceId: "phone", platform: "fcm", token: "fcm-token-1" });
      await add({ deviceId: "tablet", platform: "APNS", token: "apns-token-1" });
      expect(await tokens()).toStrictEqual([
        ["phone", "fcm", "fcm-token-1"],
        ["tablet", "apns", "apns-token-1"],
      ]);
      await add({ deviceId: "phone", platform: "fcm", token: "fcm-token-2" });
      expect(await tokens()).toStrictEqual([
        ["phone", "fcm", "fcm-token-2"],
        ["tablet", "apns", "apns-token-1"],
      ]);
      expect((await get(bearer)).pushTokens.every((t) => Number(t.createTime?.seconds) > 0)).toBe(true);

      await api.call(AccountService.method.removePushToken, { deviceId: "tablet" }, bearer);
      expect(await tokens()).toStrictEqual([["phone", "fcm", "fcm-token-2"]]);
      expect(await codeOf(api.call(AccountService.method.removePushToken, { deviceId: "tablet" }, bearer))).toBe(Code.NotFound);
      expect(await codeOf(api.call(AccountService.method.removePushToken, { deviceId: "never-seen" }, bearer))).toBe(Code.NotFound);

      const refusedField = async (promise: Promise<unknown>, field: string) => {
        const { code, message } = await refusal(promise);
        expect(code).toBe(Code.InvalidArgument);
        expect(message).toContain(field);
      };
      await refusedField(add({ deviceId: "", platform: "fcm", token: "t" }), "push_token.device_id");
      await refusedField(add({ deviceId: "d".repeat(129), platform: "fcm", token: "t" }), "push_token.device_id");
      await refusedField(add({ deviceId: "has space", platform: "fcm", token: "t" }), "push_token.device_id");
      await refusedField(add({ deviceId: "d", platform: "", token: "t" }), "push_token.platform");
      await refusedField(add({ deviceId: "d", platform: "f c m", token: "t" }), "push_token.platform");
      await refusedField(add({ deviceId: "d", platform: "fcm", token: "" }), "push_token.token");
      await refusedField(add({ deviceId: "d", platform: "fcm", token: "t".repeat(1025) }), "push_token.token");
      await refusedField(api.call(AccountService.method.addPushToken, {}, bearer), "push_token");
      await refusedField(api.call(AccountService.method.removePushToken, { deviceId: "" }, bearer), "device_id");
      expect(await tokens()).toStrictEqual([["phone", "fcm", "fcm-token-2"]]);
    });

    it("keeps at most 20 devices, dropping the least recently registered", async () => {
      const { bearer } = await signedIn(api, `devices-${protocol}`);
      for (let i = 0; i < 21; i++)
        await api.call(AccountService.method.addPushToken, { pushToken: { deviceId: `device-${i}`, platform: "fcm", token: `token-${i}` } }, bearer);
      const devices = (await get(bearer)).pushTokens.map((t) => t.deviceId);
      expect(devices).toHaveLength(20);
      expect(devices).not.toContain("device-0");
      expect(devices).toContain("device-20");
    });

    it("loses none of several devices registering at once", async () => {
      const { bearer } = await signedIn(api, `race-${protocol}`);
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          api.call(AccountService.method.addPushToken, { pushToken: { deviceId: `racer-${i}`, platform: "fcm", token: `t-${i}` } }, bearer),
        ),
      );
      expect((await get(bearer)).pushTokens.map((t) => t.deviceId).sort()).toStrictEqual(Array.from({ length: 6 }, (_, i) => `racer-${i}`));
    });

    it("returns the stored profile fields with SignIn's profile_mask", async () => {
      const { email, bearer } = await signedIn(api, `signin-${protocol}`);
      await api.call(
        AccountService.method.updateAccount,
        { account: { displayName: "Signed In", customAttributes: { plan: "gold" } }, updateMask: { paths: ["display_name", "custom_attributes"] } },
        bearer,
      );
      await api.call(AccountService.method.addPushToken, { pushToken: { deviceId: "laptop", platform: "webpush", token: "wp-1" } }, bearer);
      const signIn = await api.call(SessionService.method.signIn, {
        method: { case: "emailPassword", value: { email, password: PASSWORD } },
        profileMask: { paths: ["display_name", "custom_attributes", "push_tokens"] },
      });
      expect(signIn.profile?.displayName).toBe("Signed In");
      expect(signIn.profile?.customAttributes).toStrictEqual({ plan: "gold" });
      expect(signIn.profile?.pushTokens.map((t) => t.deviceId)).toStrictEqual(["laptop"]);
      expect(signIn.profile?.pronouns).toBe("");
      expect(signIn.profile?.email).toBe(""); // not asked for
    });

    it("requires a session", async () => {
      expect(await codeOf(api.call(AccountService.method.updateAccount, { account: { displayName: "x" }, updateMask: { paths: ["display_name"] } }))).toBe(
        Code.Unauthenticated,
      );
      expect(await codeOf(api.call(AccountService.method.addPushToken, { pushToken: { deviceId: "d", platform: "fcm", token: "t" } }))).toBe(
        Code.Unauthenticated,
      );
      expect(await codeOf(api.call(AccountService.method.removePushToken, { deviceId: "d" }))).toBe(Code.Unauthenticated);
      const forged = { authorization: `Bearer 00000000-0000-7000-8000-000000000000.${"A".repeat(43)}` };
      expect(
        await codeOf(api.call(AccountService.method.updateAccount, { account: { displayName: "x" }, updateMask: { paths: ["display_name"] } }, forged)),
      ).toBe(Code.Unauthenticated);
    });
  });

  it("keeps display names, pronouns, custom attributes and push tokens out of the database in clear", async () => {
    const api = createCaller("connect-json-h1", server.baseUrl);
    const { bearer } = await signedIn(api, "sealed");
    const marker = `Marker${Date.now()}${Math.random().toString(36).slice(2)}`;
    await api.call(
      AccountService.method.updateAccount,
      {
        account: { displayName: `${marker}Name`, pronouns: `${marker}P`, customAttributes: { [`${marker}Key`]: `${marker}Value` } },
        updateMask: { paths: ["display_name", "pronouns", "custom_attributes"] },
      },
      bearer,
    );
    await api.call(AccountService.method.addPushToken, { pushToken: { deviceId: `${marker}Device`, platform: "fcm", token: `${marker}Token` } }, bearer);
    expect((await api.call(AccountService.method.getAccount, {}, bearer)).account?.displayName).toBe(`${marker}Name`);

    let dump = "";
    for (const table of await server.rawTables()) dump += JSON.stringify(await server.rawRows(table));
    expect(dump.length).toBeGreaterThan(1000);
    expect(dump).not.toContain(marker);
    expect(dump.toLowerCase()).not.toContain(marker.toLowerCase());
  });
});
