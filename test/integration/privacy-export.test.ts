// biome-ignore-all lint/suspicious/noExplicitAny: export parts are JSON documents read as they come
// Consents and the data export, end to end over a real server on every backend:
// SignUp records the form's consents with the account (a taken address records
// nothing and answers the same); UpdateConsents appends decisions, withdrawals
// included, and ListConsents shows the newest per purpose and the history newest
// first; bad decisions are refused naming the field. ExportAccountData streams
// every kind of record about the person — profile, push token, identities,
// sessions, consents with history, subscription, messages, audit events about
// and by them — over grpc-js, Connect JSON/HTTP 1.1 and gRPC-Web alike, and
// nothing of anyone else; big sections come in bounded parts. Admins read
// consents and export with a stated reason, through the same exporter, audited.
import { create, fromBinary, toBinary, type DescMethodServerStreaming, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AccountService } from "../../gen/identity/v1/account_service_pb.js";
import { AdminService } from "../../gen/identity/v1/admin_service_pb.js";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { SessionService } from "../../gen/identity/v1/session_service_pb.js";
import { newId } from "../../src/domain/ids.ts";
import { Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { codeOf, createCaller, PROTOCOLS, type Caller, type Protocol, refusal as refused } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const PASSWORD = "correct horse battery staple";
let seq = 0;
const uniqueEmail = (tag: string) => `privacy.${tag}.${Date.now()}.${seq++}@example.test`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Collects a server-streaming call's responses over one protocol. */
async function stream<O = any>(
  protocol: Protocol,
  baseUrl: string,
  method: DescMethodServerStreaming<any, any>,
  input: object,
  headers: Record<string, string>,
): Promise<O[]> {
  if (protocol === "grpc-js") {
    const client = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    try {
      return await new Promise<O[]>((resolve, reject) => {
        const received: O[] = [];
        const call = client.makeServerStreamRequest(
          `/${method.parent.typeName}/${method.name}`,
          (message: MessageInitShape<any>) => Buffer.from(toBinary(method.input, create(method.input, message))),
          (bytes: Buffer) => fromBinary(method.output, bytes) as O,
          input,
          metadata,
        );
        call.on("data", (m: O) => received.push(m));
        call.on("error", (error: grpc.ServiceError) => reject(new ConnectError(error.details, error.code as unknown as Code)));
        call.on("end", () => resolve(received));
      });
    } finally {
      client.close();
    }
  }
  const transport =
    protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })
      : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
  const client = createClient(method.parent, transport) as unknown as Record<string, (i: unknown, o: unknown) => AsyncIterable<O>>;
  const received: O[] = [];
  for await (const m of client[method.localName]!(input, { headers })) received.push(m);
  return received;
}

type Part = { format: string; accountId: string; section: string; part: number; exportTime: string; records: any[]; current?: any[]; complete?: boolean };

/** The export's parts, parsed, each with its wire section name checked against its JSON. */
function parse(parts: Array<{ section: string; json: string }>): Part[] {
  return parts.map((p) => {
    const parsed = JSON.parse(p.json) as Part;
    expect(parsed.section).toBe(p.section);
    return parsed;
  });
}

const records = (parts: Part[], section: string) => parts.filter((p) => p.section === section).flatMap((p) => p.records);
const withoutTimes = (parts: Part[]) => parts.map(({ exportTime: _t, ...rest }) => rest);

/** The fields a refusal names (BadRequest details), and its code. */
async function refusal(promise: Promise<unknown>): Promise<{ code: Code; fields: string[] }> {
  const error = await refused(promise);
  return { code: error.code, fields: error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)) };
}

describe.each(BACKENDS)("consents and data export on the %s backend", (backend) => {
  let server: TestServer;
  let offset = 0;
  const tick = (ms = 1000) => (offset += ms);
  let api: Caller;
  let laptop: Caller;
  let console_: Caller;

  interface Person {
    email: string;
    accountId: string;
    token: string;
    displayName: string;
  }
  let alice: Person;
  let bob: Person;
  let admin: Person;
  let aliceLaptopToken: string;

  beforeAll(async () => {
    server = await startTestServer(backend, { runtime: { now: () => Date.now() + offset } });
    api = createCaller("connect-json-h1", server.baseUrl, { userAgent: "person-app/1.0" });
    laptop = createCaller("connect-json-h1", server.baseUrl, { userAgent: "laptop-browser/2.0" });
    console_ = createCaller("connect-json-h1", server.baseUrl, { userAgent: "admin-console/9.9" });
  });
  afterAll(async () => {
    for (const c of [api, laptop, console_]) c?.close();
    await server?.close();
  });

  async function signUp(
    tag: string,
    consents: Array<{ purpose: string; version: string; granted: boolean }>,
    displayName: string,
    caller = api,
  ): Promise<Person> {
    const email = uniqueEmail(tag);
    await caller.call(IdentityService.method.signUp, { email, password: PASSWORD, locale: "en", consents });
    const verified = await caller.call(IdentityService.method.verifyIdentity, {
      token: linkToken((await server.waitForMail(email, (m) => m.text.includes("token="))).text),
    });
    await caller.call(
      AccountService.method.updateAccount,
      { account: { displayName }, updateMask: { paths: ["display_name"] } },
      bearer(verified.sessionToken),
    );
    return { email, accountId: verified.accountId, token: verified.sessionToken, displayName };
  }

  async function signIn(caller: Caller, email: string): Promise<string> {
    return (await caller.call(SessionService.method.signIn, { method: { case: "emailPassword", value: { email, password: PASSWORD } } })).sessionToken;
  }

  const listConsents = (p: Person) => api.call(AccountService.method.listConsents, {}, bearer(p.token));
  const plain = (cs: Array<{ purpose: string; version: string; granted: boolean; client: string }>) =>
    cs.map(({ purpose, version, granted, client }) => ({ purpose, version, granted, client }));

  it("SignUp records the form's consents with the account; a second sign-up of the address records nothing and answers the same", async () => {
    alice = await signUp(
      "alice",
      [
        { purpose: "terms", version: "2030-01", granted: true },
        { purpose: "privacy_policy", version: "2030-01", granted: true },
        { purpose: "marketing", version: "m1", granted: true },
      ],
      "Alice Exportwoman",
    );
    const listed = await listConsents(alice);
    const given = [
      { purpose: "marketing", version: "m1", granted: true, client: "person-app/1.0" },
      { purpose: "privacy_policy", version: "2030-01", granted: true, client: "person-app/1.0" },
      { purpose: "terms", version: "2030-01", granted: true, client: "person-app/1.0" },
    ];
    expect(plain(listed.consents)).toEqual(given);
    expect(listed.history).toHaveLength(3);

    // The address is taken: same (empty) answer, and the attempt's consents go nowhere.
    tick();
    const again = await api.call(IdentityService.method.signUp, {
      email: alice.email,
      password: PASSWORD,
      locale: "en",
      consents: [{ purpose: "analytics", version: "a9", granted: true }],
    });
    expect(again).toEqual(await api.call(IdentityService.method.signUp, { email: uniqueEmail("fresh"), password: PASSWORD, locale: "en" }));
    expect(plain((await listConsents(alice)).consents)).toEqual(given);
    const rows = await server.rawRows("consents");
    expect(rows.filter((r) => r.purpose === "analytics")).toEqual([]);
    // What is stored: ids, slugs, versions, the client; nothing personal.
    expect(JSON.stringify(rows)).not.toContain(alice.email);
  });

  it("UpdateConsents appends decisions, withdrawals included; the current state is the newest per purpose, the history newest first", async () => {
    tick();
    const updated = await api.call(
      AccountService.method.updateConsents,
      {
        consents: [
          { purpose: "marketing", version: "m1", granted: false },
          { purpose: "analytics", version: "a1", granted: true },
        ],
      },
      bearer(alice.token),
    );
    tick();
    await laptop.call(
      AccountService.method.updateConsents,
      {
        consents: [
          { purpose: "terms", version: "2030-06", granted: true },
          { purpose: "shop.newsletter-v2", version: "1", granted: true },
        ],
      },
      bearer(alice.token),
    );
    expect(plain(updated.consents).map((c) => [c.purpose, c.granted])).toEqual([
      ["analytics", true],
      ["marketing", false],
      ["privacy_policy", true],
      ["terms", true],
    ]);

    const { consents, history } = await listConsents(alice);
    expect(plain(consents)).toEqual([
      { purpose: "analytics", version: "a1", granted: true, client: "person-app/1.0" },
      { purpose: "marketing", version: "m1", granted: false, client: "person-app/1.0" },
      { purpose: "privacy_policy", version: "2030-01", granted: true, client: "person-app/1.0" },
      { purpose: "shop.newsletter-v2", version: "1", granted: true, client: "laptop-browser/2.0" },
      { purpose: "terms", version: "2030-06", granted: true, client: "laptop-browser/2.0" },
    ]);
    expect(history).toHaveLength(7);
    const times = history.map((c) => Number(c.recordTime!.seconds) * 1000 + c.recordTime!.nanos / 1e6);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(
      history
        .slice(0, 2)
        .map((c) => c.purpose)
        .sort(),
    ).toEqual(["shop.newsletter-v2", "terms"]);
    expect(
      history
        .slice(2, 4)
        .map((c) => `${c.purpose}:${c.granted}`)
        .sort(),
    ).toEqual(["analytics:true", "marketing:false"]);
    expect(
      history
        .slice(4)
        .map((c) => c.purpose)
        .sort(),
    ).toEqual(["marketing", "privacy_policy", "terms"]);
  });

  it("refuses bad decisions naming the field, records nothing of the call, and needs a session", async () => {
    const before = (await listConsents(alice)).history.length;
    const update = (consents: Array<{ purpose: string; version: string; granted?: boolean }>) =>
      refusal(api.call(AccountService.method.updateConsents, { consents }, bearer(alice.token)));
    expect(
      await update([
        { purpose: "terms", version: "v1" },
        { purpose: "Marketing!", version: "v1" },
      ]),
    ).toEqual({ code: Code.InvalidArgument, fields: ["consents[1].purpose"] });
    expect(await update([{ purpose: "", version: "has space" }])).toEqual({
      code: Code.InvalidArgument,
      fields: ["consents[0].purpose", "consents[0].version"],
    });
    expect(await update([{ purpose: "x".repeat(65), version: "v".repeat(65) }])).toEqual({
      code: Code.InvalidArgument,
      fields: ["consents[0].purpose", "consents[0].version"],
    });
    expect(
      await update([
        { purpose: "terms", version: "v1" },
        { purpose: "terms", version: "v2" },
      ]),
    ).toEqual({ code: Code.InvalidArgument, fields: ["consents[1].purpose"] });
    expect(await update([])).toEqual({ code: Code.InvalidArgument, fields: ["consents"] });
    expect(await update(Array.from({ length: 21 }, (_, i) => ({ purpose: `p${i}`, version: "1" })))).toEqual({
      code: Code.InvalidArgument,
      fields: ["consents"],
    });
    expect((await listConsents(alice)).history).toHaveLength(before);

    const email = uniqueEmail("bad-signup");
    expect(await refusal(api.call(IdentityService.method.signUp, { email, password: PASSWORD, consents: [{ purpose: "terms", version: "" }] }))).toEqual({
      code: Code.InvalidArgument,
      fields: ["consents[0].version"],
    });
    expect(await codeOf(api.call(AccountService.method.listConsents, {}))).toBe(Code.Unauthenticated);
    expect(await codeOf(api.call(AccountService.method.updateConsents, { consents: [{ purpose: "terms", version: "1", granted: true }] }))).toBe(
      Code.Unauthenticated,
    );
  });

  it("sets up a second person, a second session, a push token, a profile, a plan and an admin's look at the consents", async () => {
    bob = await signUp(
      "bob",
      [
        { purpose: "terms", version: "2030-01", granted: true },
        { purpose: "bobs.own-purpose", version: "b7", granted: true },
      ],
      "Bob Otherman",
    );
    await api.call(
      AccountService.method.addPushToken,
      { pushToken: { deviceId: "bob-phone", platform: "ios", token: "bob-push-token-xyz" } },
      bearer(bob.token),
    );
    aliceLaptopToken = await signIn(laptop, alice.email);
    const stranger = createCaller("connect-json-h1", server.baseUrl, { userAgent: "stranger-bot/6.6" });
    const wrong = stranger.call(SessionService.method.signIn, {
      method: { case: "emailPassword", value: { email: alice.email, password: "not her password at all" } },
    });
    expect(await codeOf(wrong)).toBe(Code.Unauthenticated);
    stranger.close();
    await api.call(
      AccountService.method.updateAccount,
      { account: { pronouns: "she/her", customAttributes: { favourite: "export-colour-teal" } }, updateMask: { paths: ["pronouns", "custom_attributes"] } },
      bearer(alice.token),
    );
    await api.call(
      AccountService.method.addPushToken,
      { pushToken: { deviceId: "alice-phone", platform: "android", token: "alice-push-token-abc" } },
      bearer(alice.token),
    );

    // An admin of the tenant (made so directly; the role is read at sign-in).
    admin = await signUp("admin", [], "Adam Administrator", console_);
    expect(await server.runtime.durable.accounts.setRole({ tenantId: "default", accountId: admin.accountId, role: Role.ADMIN, at: Date.now() })).toBe(true);
    admin.token = await signIn(console_, admin.email);
    await console_.call(
      AdminService.method.setSubscription,
      {
        accountId: alice.accountId,
        subscription: { plan: "family-premium", expireTime: { seconds: BigInt(Date.UTC(2031, 5, 30) / 1000) } },
        reason: "bought a plan",
      },
      bearer(admin.token),
    );
    const seen = await console_.call(
      AdminService.method.listUserConsents,
      { accountId: alice.accountId, reason: "ticket 4711: consent dispute" },
      bearer(admin.token),
    );
    expect(plain(seen.consents)).toEqual(plain((await listConsents(alice)).consents));
    expect(seen.history).toHaveLength((await listConsents(alice)).history.length);
  });

  describe.each(PROTOCOLS)("ExportAccountData over %s", (protocol) => {
    it("holds every kind of record about the person and nothing about anyone else", async () => {
      const parts = parse(await stream(protocol, server.baseUrl, AccountService.method.exportAccountData, {}, bearer(alice.token)));
      const text = JSON.stringify(parts);

      expect(parts.map((p) => p.section)).toEqual([
        "account",
        "identities",
        "sessions",
        "second_factors",
        "consents",
        "subscription",
        "messages",
        "events",
        "audit_events_about_me",
        "audit_events_by_me",
        "summary",
      ]);
      for (const p of parts) expect(p).toMatchObject({ format: "identity.export.v1", accountId: alice.accountId, part: 1 });

      const [account] = records(parts, "account");
      expect(account).toMatchObject({
        id: alice.accountId,
        tenantId: "default",
        role: "USER",
        state: "ACTIVE",
        locale: "en",
        email: alice.email,
        emailVerified: true,
        displayName: "Alice Exportwoman",
        pronouns: "she/her",
        customAttributes: { favourite: "export-colour-teal" },
        pushTokens: [{ deviceId: "alice-phone", platform: "android", token: "alice-push-token-abc" }],
        passwordSet: true,
      });
      const identities = records(parts, "identities");
      expect(identities).toEqual([expect.objectContaining({ kind: "EMAIL", value: alice.email, verified: true, issuer: "", profile: {} })]);

      const sessions = records(parts, "sessions");
      expect(sessions).toHaveLength(2);
      expect(sessions.map((s) => s.userAgent).sort()).toEqual(["laptop-browser/2.0", "person-app/1.0"]);
      for (const s of sessions)
        expect(Object.keys(s).sort()).toEqual([
          "absoluteExpireTime",
          "assuranceLevel",
          "authenticationMethods",
          "createTime",
          "expireTime",
          "id",
          "ipAddress",
          "lastSeenTime",
          "userAgent",
        ]);
      // Each says how it was opened (the verification link, or a password sign-in, of the email identity).
      for (const s of sessions)
        expect(s.authenticationMethods).toEqual([
          { method: expect.stringMatching(/^(email_link|password)$/), identityId: identities[0]!.id, completeTime: s.createTime },
        ]);
      expect(sessions.map((s) => s.authenticationMethods[0].method).sort()).toEqual(["email_link", "password"]);

      // No second factor enrolled: an empty section (test/integration/second-factors.test.ts exports one).
      expect(parts.find((p) => p.section === "second_factors")).toMatchObject({ records: [], recoveryCodesRemaining: 0 });

      const [consents] = parts.filter((p) => p.section === "consents");
      expect(consents!.current!.map((c: any) => `${c.purpose}:${c.version}:${c.granted}`)).toEqual([
        "analytics:a1:true",
        "marketing:m1:false",
        "privacy_policy:2030-01:true",
        "shop.newsletter-v2:1:true",
        "terms:2030-06:true",
      ]);
      const history = consents!.records;
      expect(history).toHaveLength(7);
      expect(history.map((c: any) => Date.parse(c.recordTime))).toEqual([...history.map((c: any) => Date.parse(c.recordTime))].sort((a, b) => b - a));
      expect(history.filter((c: any) => c.purpose === "marketing").map((c: any) => c.granted)).toEqual([false, true]); // the withdrawal, then the grant

      expect(records(parts, "subscription")).toEqual([{ plan: "family-premium", status: "active", renews: false, expireTime: "2031-06-30T00:00:00.000Z" }]);
      // The verification link, and the notice about the second sign-up of her address; never their contents.
      expect(records(parts, "messages").map((m) => [m.kind, Object.keys(m).sort()])).toEqual(
        ["verify_email", "signup_existing"].map((kind) => [kind, ["attempts", "createTime", "id", "kind", "sentTime", "status"]]),
      );

      // Her domain events (what webhooks carry): type, time and ids, oldest first; none of Bob's.
      const events = records(parts, "events");
      expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["account.created", "identity.verified", "session.created", "account.updated"]));
      expect(events[0]).toMatchObject({ type: "account.created", data: { identity_kind: "email" } });
      for (const e of events) {
        expect(Object.keys(e).sort()).toEqual(["data", "eventTime", "id", "type"]);
        expect(Date.parse(String(e.eventTime))).not.toBeNaN();
      }
      expect(JSON.stringify(events)).not.toContain(bob.accountId);
      expect(new Set(events.map((e) => e.id)).size).toBe(events.length);

      const about = records(parts, "audit_events_about_me");
      const signUpEvent = about.find((e) => e.action === "identity.sign_up" && e.outcome === "success");
      expect(signUpEvent).toMatchObject({ actor: "anonymous", target: `account:${alice.accountId}`, userAgent: "person-app/1.0" });
      expect(about.some((e) => e.action === "session.sign_in" && e.userAgent === "laptop-browser/2.0")).toBe(true);
      // A failed sign-in to her account may be anyone's: recorded, without their client.
      expect(about.find((e) => e.action === "session.sign_in_failed")).toMatchObject({
        actor: "anonymous",
        outcome: "INVALID_CREDENTIALS",
        ipAddress: "",
        userAgent: "",
      });
      expect(text).not.toContain("stranger-bot/6.6");
      // The admin's look: what, when and why — not who (another person) nor from where.
      expect(about.find((e) => e.action === "user.set_subscription")).toMatchObject({ actor: "account", reason: "bought a plan", userAgent: "" });
      expect(about.find((e) => e.action === "user.list_consents")).toMatchObject({
        actor: "account",
        reason: "ticket 4711: consent dispute",
        ipAddress: "",
        userAgent: "",
        outcome: "success",
      });

      const summary = parts.at(-1)!;
      expect(summary.complete).toBe(true);
      for (const { section, parts: count, records: n } of summary.records) {
        expect(count).toBe(parts.filter((p) => p.section === section).length);
        expect(n).toBe(records(parts, section).length);
      }

      // Nothing of anyone else: not Bob's, not the admin's.
      for (const other of [bob, admin]) {
        for (const needle of [other.accountId, other.email, other.displayName]) expect(text).not.toContain(needle);
      }
      for (const needle of ["bobs.own-purpose", "bob-push-token-xyz", "admin-console/9.9"]) expect(text).not.toContain(needle);
      // No secrets: session tokens, password hashes, link tokens.
      for (const secret of [alice.token.split(".")[1]!, aliceLaptopToken.split(".")[1]!, "$argon2", "token="]) expect(text).not.toContain(secret);
    });
  });

  it("the export is the same over every protocol, Bob's holds only Bob's, and it needs the person's session", async () => {
    const [viaGrpc, viaConnect, viaWeb] = await Promise.all(
      PROTOCOLS.map(async (p) => parse(await stream(p, server.baseUrl, AccountService.method.exportAccountData, {}, bearer(alice.token)))),
    );
    expect(withoutTimes(viaConnect!)).toEqual(withoutTimes(viaGrpc!));
    expect(withoutTimes(viaWeb!)).toEqual(withoutTimes(viaGrpc!));

    const bobs = parse(await stream("connect-json-h1", server.baseUrl, AccountService.method.exportAccountData, {}, bearer(bob.token)));
    expect(records(bobs, "account")[0]).toMatchObject({
      id: bob.accountId,
      email: bob.email,
      pushTokens: [expect.objectContaining({ token: "bob-push-token-xyz" })],
    });
    expect(records(bobs, "subscription")).toEqual([{ plan: "", status: "none", renews: false, expireTime: null }]);
    const bobText = JSON.stringify(bobs);
    for (const needle of [alice.accountId, alice.email, alice.displayName, "alice-push-token-abc", "shop.newsletter-v2"]) expect(bobText).not.toContain(needle);

    for (const protocol of PROTOCOLS) {
      expect(await codeOf(stream(protocol, server.baseUrl, AccountService.method.exportAccountData, {}, {}))).toBe(Code.Unauthenticated);
      expect(await codeOf(stream(protocol, server.baseUrl, AccountService.method.exportAccountData, {}, bearer(`${alice.accountId}.${"A".repeat(43)}`)))).toBe(
        Code.Unauthenticated,
      );
    }
  });

  it("a large section arrives in parts of at most 500 records, read in order; ListConsents shows the newest 1000", async () => {
    const carol = await signUp("carol", [], "Carol Many");
    const base = Date.now() + offset;
    const rows = Array.from({ length: 1001 }, (_, i) => ({
      id: newId(base + i),
      tenantId: "default",
      accountId: carol.accountId,
      purpose: `p${i % 7}`,
      version: `v${i}`,
      granted: i % 2 === 0,
      client: "bulk",
      recordedAt: base + i,
    }));
    await server.runtime.durable.consents.append(rows);
    // A long audit trail about her, and actions of hers in another tenant's chain (as a platform super admin's would be).
    const event = { actor: "system", action: "test.bulk", target: `account:${carol.accountId}`, reason: "", ip: "", userAgent: "", outcome: "success" };
    for (let i = 0; i < 501; i++) await server.runtime.app.audit.record({ ...event, tenantId: "default" });
    await server.runtime.app.audit.record({ ...event, tenantId: "zz-other-tenant", actor: `account:${carol.accountId}`, target: "tenant:zz-other-tenant" });
    const parts = parse(await stream("grpc-js", server.baseUrl, AccountService.method.exportAccountData, {}, bearer(carol.token)));
    const consentParts = parts.filter((p) => p.section === "consents");
    expect(consentParts.map((p) => [p.part, p.records.length, p.current !== undefined])).toEqual([
      [1, 500, true],
      [2, 500, false],
      [3, 1, false],
    ]);
    expect(consentParts.flatMap((p) => p.records).map((c) => c.version)).toEqual(rows.map((r) => r.version).reverse());
    expect(consentParts[0]!.current!.map((c: any) => c.version)).toEqual(["v994", "v995", "v996", "v997", "v998", "v999", "v1000"]);
    expect(parts.at(-1)!.records.find((r: any) => r.section === "consents")).toEqual({ section: "consents", parts: 3, records: 1001 });
    const aboutParts = parts.filter((p) => p.section === "audit_events_about_me");
    expect(aboutParts.map((p) => p.records.length)).toEqual([500, expect.any(Number)]);
    const about = aboutParts.flatMap((p) => p.records);
    expect(about.filter((e) => e.action === "test.bulk")).toHaveLength(501);
    expect(about.map((e) => e.sequence)).toEqual([...new Set(about.map((e) => e.sequence))].sort((a, b) => a - b));
    const byMe = records(parts, "audit_events_by_me");
    expect(byMe.filter((e) => e.tenantId === "zz-other-tenant")).toEqual([
      expect.objectContaining({ actor: `account:${carol.accountId}`, target: "tenant:zz-other-tenant" }),
    ]);
    // Her own changes in her tenant (profile, consents: rectification is audited) are about herself.
    expect(byMe.filter((e) => e.tenantId !== "zz-other-tenant").every((e) => e.target === `account:${carol.accountId}`)).toBe(true);
    const listed = await listConsents(carol);
    expect(listed.history).toHaveLength(1000);
    expect(listed.history[0]!.version).toBe("v1000");
  });

  it("admins read consents and export with a stated reason, audited, through the same exporter", async () => {
    const headers = bearer(admin.token);
    for (const call of [
      (reason: string, accountId = alice.accountId) => console_.call(AdminService.method.listUserConsents, { accountId, reason }, headers),
      (reason: string, accountId = alice.accountId) =>
        stream("connect-json-h1", server.baseUrl, AdminService.method.exportUserData, { accountId, reason }, headers),
    ]) {
      expect(await refusal(call(""))).toEqual({ code: Code.InvalidArgument, fields: ["reason"] });
      expect(await refusal(call("   "))).toEqual({ code: Code.InvalidArgument, fields: ["reason"] });
      expect(await refusal(call("why", ""))).toEqual({ code: Code.InvalidArgument, fields: ["account_id"] });
      expect((await refusal(call("why", "not-an-id"))).code).toBe(Code.NotFound);
      expect((await refusal(call("why", "someone@example.test"))).code).toBe(Code.NotFound);
      expect((await refusal(call("why", newId()))).code).toBe(Code.NotFound);
    }
    // Permission before existence: a person is refused, whatever the target.
    for (const target of [alice.accountId, newId()]) {
      expect(
        await codeOf(stream("grpc-js", server.baseUrl, AdminService.method.exportUserData, { accountId: target, reason: "curious" }, bearer(bob.token))),
      ).toBe(Code.PermissionDenied);
      expect(await codeOf(api.call(AdminService.method.listUserConsents, { accountId: target, reason: "curious" }, bearer(bob.token)))).toBe(
        Code.PermissionDenied,
      );
    }
    // An admin manages USER accounts only: another admin's data is refused.
    const colleague = await signUp("colleague", [], "Colin Colleague");
    await server.runtime.durable.accounts.setRole({ tenantId: "default", accountId: colleague.accountId, role: Role.ADMIN, at: Date.now() });
    expect(
      await codeOf(stream("grpc-js", server.baseUrl, AdminService.method.exportUserData, { accountId: colleague.accountId, reason: "curious" }, headers)),
    ).toBe(Code.PermissionDenied);

    const reason = "DSAR 2030-17: the person asked by post";
    const responses = await stream<MessageShape<typeof AdminService.method.exportUserData.output>>(
      "grpc-js",
      server.baseUrl,
      AdminService.method.exportUserData,
      { accountId: alice.accountId, reason },
      headers,
    );
    const adminView = parse(responses.map((r) => r.part!));
    const own = parse(await stream("connect-json-h1", server.baseUrl, AccountService.method.exportAccountData, {}, bearer(alice.token)));
    // The same exporter: identical but for the events the admin's export itself wrote about her.
    const stable = (parts: Part[]) => withoutTimes(parts.filter((p) => p.section !== "audit_events_about_me" && p.section !== "summary"));
    expect(stable(adminView)).toEqual(stable(own));
    expect(JSON.stringify(adminView)).not.toContain(admin.accountId);

    // The trail has it: who, about whom, why.
    const trail = await console_.call(AdminService.method.listAuditEvents, { target: `account:${alice.accountId}`, action: "user.export" }, headers);
    // The two refusals for want of a reason are recorded too.
    expect(trail.events.map((e) => [e.actor, e.outcome])).toEqual([
      [`account:${admin.accountId}`, "REASON_REQUIRED"],
      [`account:${admin.accountId}`, "REASON_REQUIRED"],
      [`account:${admin.accountId}`, "success"],
    ]);
    expect(trail.events.at(-1)!.reason).toBe(reason);
    const consentsTrail = await console_.call(
      AdminService.method.listAuditEvents,
      { target: `account:${alice.accountId}`, action: "user.list_consents" },
      headers,
    );
    expect(consentsTrail.events.map((e) => [e.actor, e.outcome, e.reason.trim()])).toEqual([
      [`account:${admin.accountId}`, "success", "ticket 4711: consent dispute"],
      [`account:${admin.accountId}`, "REASON_REQUIRED", ""],
      [`account:${admin.accountId}`, "REASON_REQUIRED", ""],
    ]);
    const refused = await console_.call(AdminService.method.listAuditEvents, { target: `account:${colleague.accountId}`, action: "user.export" }, headers);
    expect(refused.events.map((e) => e.outcome)).toEqual(["ACCOUNT_ROLE_TOO_HIGH"]);
    // And the person sees that it happened, and why.
    expect(records(own, "audit_events_about_me").find((e) => e.action === "user.export" && e.outcome === "success")).toMatchObject({
      actor: "account",
      reason,
      userAgent: "",
    });
  });

  it("the admin's own export lists the admin's actions, naming no other person", async () => {
    const parts = parse(await stream("grpc-web", server.baseUrl, AccountService.method.exportAccountData, {}, bearer(admin.token)));
    const byMe = records(parts, "audit_events_by_me");
    expect(byMe.filter((e) => e.action === "user.export" && e.outcome === "success")).toEqual([
      // Made over grpc-js: the admin's own client is theirs to see.
      expect.objectContaining({
        actor: `account:${admin.accountId}`,
        target: "account",
        reason: "",
        userAgent: expect.stringContaining("grpc-node-js"),
        ipAddress: "127.0.0.1",
      }),
    ]);
    expect(byMe.some((e) => e.action === "user.list_consents")).toBe(true);
    const text = JSON.stringify(parts);
    for (const other of [alice, bob]) for (const needle of [other.accountId, other.email, other.displayName]) expect(text).not.toContain(needle);
    expect(text).not.toContain("DSAR 2030-17");
  });
});
