// Logs: secrets are redacted at the paths where they are logged, and nothing
// else is (an exit code or a driver's error code stays readable); a
// human-readable format for development, JSON otherwise (issue 14).
import { describe, expect, it } from "vitest";
import { loadConfig, ConfigError } from "../../src/config.ts";
import { chooseLogFormat, createLogger } from "../../src/server/logger.ts";

function capture(format: "json" | "pretty" = "json") {
  const lines: string[] = [];
  const log = createLogger("debug", { write: (line: string) => void lines.push(line) }, format);
  return { log, lines };
}

describe("redaction", () => {
  it("keeps fields that merely share a name with a secret: exit codes, error codes, recipients counts", () => {
    const { log, lines } = capture();
    log.error({ worker: 2, code: 1 }, "worker exited; starting another");
    log.warn({ err: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" }) }, "redis down");
    log.info({ delivery: { code: 550, to: 1 } }, "delivery failed");
    const [exit, driver, delivery] = lines.map((l) => JSON.parse(l));
    expect(exit.code).toBe(1);
    expect(driver.err.code).toBe("ECONNREFUSED");
    expect(delivery.delivery).toEqual({ code: 550, to: 1 });
    expect(lines.join("\n")).not.toContain("[redacted]");
  });

  it("redacts every secret path: passwords, tokens, credentials, addresses and the development mail's recipient", () => {
    const { log, lines } = capture();
    const secrets = ["correct horse battery", "tok.secretvalue", "Bearer abc123", "alice@example.com", "+33612345678", "Alice Liddell", "sid=xyz"];
    log.info({ password: secrets[0], token: secrets[1], headers: { authorization: secrets[2] } }, "top level");
    log.info({ request: { newPassword: secrets[0], sessionToken: secrets[1], email: secrets[3] } }, "one level down");
    log.info({ call: { request: { currentPassword: secrets[0], phone: secrets[4], displayName: secrets[5] } } }, "two levels down");
    log.info({ mail: { to: secrets[3], subject: "Verify", text: "code 123456" } }, "email (development transport, not sent)");
    log.info({ headers: { cookie: secrets[6] }, secret: "s3cr3t" }, "headers");
    log.warn(
      {
        err: Object.assign(new Error("READONLY"), {
          code: "READONLY",
          command: { name: "set", args: ["identity:sess:{acc_1}:deadbeefcafe", "alice@example.com"] },
        }),
      },
      "redis",
    );
    const text = lines.join("\n");
    for (const secret of [...secrets, "s3cr3t", "deadbeefcafe"]) expect(text).not.toContain(secret);
    expect(JSON.parse(lines[5]!).err).toMatchObject({ code: "READONLY", command: { name: "set", args: "[redacted]" } });
    expect(JSON.parse(lines[3]!).mail).toEqual({ to: "[redacted]", subject: "Verify", text: "code 123456" });
  });

  it("redacts phone numbers: the development SMS's recipient and fields that only hold a number", () => {
    const { log, lines } = capture();
    log.info({ sms: { to: "+33612345678", text: "482913 is your code", messageId: "m1" } }, "sms (development sender, not sent)");
    log.info({ request: { phoneNumber: "+447400123456", msisdn: "14155552671" }, phone_number: "+14155550000" }, "numbers");
    log.info({ delivery: { errorCode: "TWILIO", responseCode: 400, providerCode: "21211" } }, "delivery failed");
    const text = lines.join("\n");
    for (const number of ["612345678", "7400123456", "4155552671", "4155550000"]) expect(text).not.toContain(number);
    expect(JSON.parse(lines[0]!).sms).toEqual({ to: "[redacted]", text: "482913 is your code", messageId: "m1" });
    expect(JSON.parse(lines[2]!).delivery).toEqual({ errorCode: "TWILIO", responseCode: 400, providerCode: "21211" });
  });

  it("redacts in the pretty format too", () => {
    const { log, lines } = capture("pretty");
    log.info({ password: "hunter2hunter2", code: 3 }, "hello");
    expect(lines.join("")).not.toContain("hunter2hunter2");
    expect(lines.join("")).toContain("code=3");
  });
});

describe("log format", () => {
  it("pretty prints one readable line per record: time, level, message, fields", () => {
    const { log, lines } = capture("pretty");
    log.warn({ backend: "redis", nested: { a: 1 } }, "redis does not answer");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}redis does not answer backend=redis nested=\{"a":1\}\n$/);
  });

  it("JSON is one object per line", () => {
    const { log, lines } = capture("json");
    log.info({ a: 1 }, "m");
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: "m", a: 1 });
  });

  it("defaults to pretty only in development mode on a terminal, JSON otherwise", () => {
    const development = loadConfig({});
    const production = loadConfig({
      MYSQL_URL: "mysql://u:p@db/identity",
      REDIS_URL: "redis://cache",
      KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64")}`,
      BLIND_INDEX_KEY: Buffer.alloc(32, 2).toString("base64"),
    });
    expect(chooseLogFormat(development, true)).toBe("pretty");
    expect(chooseLogFormat(development, false)).toBe("json");
    expect(chooseLogFormat(production, true)).toBe("json");
    expect(chooseLogFormat(loadConfig({ LOG_FORMAT: "json" }), true)).toBe("json");
    expect(chooseLogFormat(loadConfig({ LOG_FORMAT: "pretty" }), false)).toBe("pretty");
  });

  it("LOG_FORMAT is json or pretty, and pretty is for development only", () => {
    expect(() => loadConfig({ LOG_FORMAT: "xml" })).toThrow(ConfigError);
    expect(() =>
      loadConfig({
        LOG_FORMAT: "pretty",
        MYSQL_URL: "mysql://u:p@db/identity",
        REDIS_URL: "redis://cache",
        KEY_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString("base64")}`,
        BLIND_INDEX_KEY: Buffer.alloc(32, 2).toString("base64"),
      }),
    ).toThrow(/LOG_FORMAT/);
  });
});
