import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { assertServable, ConfigError, loadConfig } from "../../src/config.ts";

const key = (bytes = 32) => randomBytes(bytes).toString("base64");

/** A complete non-embedded environment (MySQL + Redis + keys). */
function server(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    MYSQL_URL: "mysql://user:pw@db:3306/identity",
    REDIS_URL: "redis://cache:6379",
    KEY_ENCRYPTION_KEYS: `k1:${key()}`,
    BLIND_INDEX_KEY: key(),
    ...extra,
  };
}

/** Calls loadConfig and returns the ConfigError it throws (fails when it does not throw one). */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe("loadConfig defaults", () => {
  it("uses the embedded development defaults on an empty environment", () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.host).toBe("127.0.0.1");
    expect(config.tlsCertFile).toBeUndefined();
    expect(config.tlsKeyFile).toBeUndefined();
    expect(config.mysqlUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.workers).toBe(1);
    expect(config.keyEncryptionKeys).toBeUndefined();
    expect(config.blindIndexKey).toBeUndefined();
    expect(config.logLevel).toBe("info");
    expect(config.corsOrigins).toEqual([]);
  });

  it("treats empty strings as unset", () => {
    const config = loadConfig({ PORT: "", MYSQL_URL: "", REDIS_URL: "", HOST: "", LOG_LEVEL: "" });
    expect(config.port).toBe(8080);
    expect(config.host).toBe("127.0.0.1");
    expect(config.mysqlUrl).toBeUndefined();
    expect(config.logLevel).toBe("info");
  });

  it("stays single-worker when embedded even if WORKERS is set", () => {
    expect(loadConfig({ WORKERS: "8" }).workers).toBe(1);
  });

  it("listens on all interfaces with TLS and keeps an explicit HOST", () => {
    const tls = loadConfig({ TLS_CERT_FILE: "/c.pem", TLS_KEY_FILE: "/k.pem" });
    expect(tls.host).toBe("0.0.0.0");
    expect(tls.tlsCertFile).toBe("/c.pem");
    expect(tls.tlsKeyFile).toBe("/k.pem");
    expect(loadConfig({ HOST: "::1" }).host).toBe("::1");
  });

  it("accepts valid PORT boundaries", () => {
    expect(loadConfig({ PORT: "0" }).port).toBe(0);
    expect(loadConfig({ PORT: "65535" }).port).toBe(65535);
  });

  it("uses MySQL and Redis when both are set, with WORKERS honoured", () => {
    const config = loadConfig(server({ WORKERS: "3" }));
    expect(config.mysqlUrl).toBe("mysql://user:pw@db:3306/identity");
    expect(config.redisUrl).toBe("redis://cache:6379");
    expect(config.workers).toBe(3);
    expect(loadConfig(server({ MYSQL_URL: "mariadb://db/identity", REDIS_URL: "rediss://cache" })).mysqlUrl).toBe("mariadb://db/identity");
  });

  it("returns a frozen object", () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(8080);
  });
});

describe("loadConfig rejects invalid variables, naming them", () => {
  const cases: Array<[string, Record<string, string | undefined>, string]> = [
    ["PORT=abc", { PORT: "abc" }, "PORT"],
    ["PORT=70000", { PORT: "70000" }, "PORT"],
    ["PORT=-1", { PORT: "-1" }, "PORT"],
    ["PORT=80.5", { PORT: "80.5" }, "PORT"],
    ["MYSQL_URL=not-a-url", { MYSQL_URL: "not-a-url" }, "MYSQL_URL"],
    ["MYSQL_URL=http://x", { MYSQL_URL: "http://x" }, "MYSQL_URL"],
    ["MYSQL_URL=http://x with REDIS_URL and keys", server({ MYSQL_URL: "http://x" }), "MYSQL_URL"],
    ["MYSQL_URL=not-a-url with REDIS_URL and keys", server({ MYSQL_URL: "not-a-url" }), "MYSQL_URL"],
    ["REDIS_URL=http://x", { REDIS_URL: "http://x" }, "REDIS_URL"],
    ["REDIS_URL=mysql://x with MYSQL_URL and keys", server({ REDIS_URL: "mysql://x" }), "REDIS_URL"],
    ["REDIS_URL without MYSQL_URL", { REDIS_URL: "redis://cache:6379" }, "MYSQL_URL"],
    ["MYSQL_URL without REDIS_URL", { MYSQL_URL: "mysql://db/identity" }, "REDIS_URL"],
    ["TLS_CERT_FILE without TLS_KEY_FILE", { TLS_CERT_FILE: "/c.pem" }, "TLS_KEY_FILE"],
    ["TLS_KEY_FILE without TLS_CERT_FILE", { TLS_KEY_FILE: "/k.pem" }, "TLS_CERT_FILE"],
    ["KEY_ENCRYPTION_KEYS with a 16-byte key", { KEY_ENCRYPTION_KEYS: `k1:${key(16)}` }, "KEY_ENCRYPTION_KEYS"],
    ["KEY_ENCRYPTION_KEYS bare 16-byte key", { KEY_ENCRYPTION_KEYS: key(16) }, "KEY_ENCRYPTION_KEYS"],
    ["duplicate key ids", { KEY_ENCRYPTION_KEYS: `k1:${key()},k1:${key()}` }, "KEY_ENCRYPTION_KEYS"],
    ["invalid key id", { KEY_ENCRYPTION_KEYS: `bad id!:${key()}` }, "KEY_ENCRYPTION_KEYS"],
    ["BLIND_INDEX_KEY with a 16-byte key", { BLIND_INDEX_KEY: key(16) }, "BLIND_INDEX_KEY"],
    ["LOG_LEVEL=loud", { LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    ["MAIL_FROM without @", { MAIL_FROM: "Identity <no-reply>" }, "MAIL_FROM"],
    ["MAIL_FROM with a header injection", { MAIL_FROM: "a@b.example\r\nBcc: x@y.example" }, "MAIL_FROM"],
    ["PUBLIC_URL=ftp://x", { PUBLIC_URL: "ftp://x" }, "PUBLIC_URL"],
    ["SMTP_URL=http://x", { SMTP_URL: "http://x" }, "SMTP_URL"],
    ["WORKERS=0 on servers", server({ WORKERS: "0" }), "WORKERS"],
    ["TRUSTED_PROXIES=11", { TRUSTED_PROXIES: "11" }, "TRUSTED_PROXIES"],
  ];

  it.each(cases)("%s", (_name, env, variable) => {
    const error = configError(env);
    expect(error.name).toBe("ConfigError");
    // The message leads with the variable at fault: "invalid configuration: PORT must be ...".
    expect(error.message.startsWith(`invalid configuration: ${variable} `), error.message).toBe(true);
  });

  it("requires KEY_ENCRYPTION_KEYS when MYSQL_URL and REDIS_URL are set", () => {
    expect(configError(server({ KEY_ENCRYPTION_KEYS: undefined })).message).toMatch(/^invalid configuration: KEY_ENCRYPTION_KEYS /);
    expect(configError(server({ KEY_ENCRYPTION_KEYS: "" })).message).toMatch(/^invalid configuration: KEY_ENCRYPTION_KEYS /);
  });

  it("requires BLIND_INDEX_KEY when MYSQL_URL and REDIS_URL are set", () => {
    expect(configError(server({ BLIND_INDEX_KEY: undefined })).message).toMatch(/^invalid configuration: BLIND_INDEX_KEY /);
    expect(configError(server({ BLIND_INDEX_KEY: "" })).message).toMatch(/^invalid configuration: BLIND_INDEX_KEY /);
  });

  it("does not require keys in embedded mode", () => {
    expect(() => loadConfig({})).not.toThrow();
  });
});

describe("KEY_ENCRYPTION_KEYS parsing", () => {
  it('parses "k1:<b64>,k2:<b64>" in order', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const config = loadConfig(server({ KEY_ENCRYPTION_KEYS: `k1:${k1.toString("base64")},k2:${k2.toString("base64")}` }));
    const keys = config.keyEncryptionKeys ?? [];
    expect(keys.map((k) => k.id)).toEqual(["k1", "k2"]);
    expect(keys[0]?.key.equals(k1)).toBe(true);
    expect(keys[1]?.key.equals(k2)).toBe(true);
  });

  it("keeps the listed order (the first wraps new keys) and trims spaces", () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const config = loadConfig({ DEVELOPMENT_MODE: "true", KEY_ENCRYPTION_KEYS: `new: ${a.toString("base64")} ,old:${b.toString("base64")}` });
    expect(config.keyEncryptionKeys?.map((k) => k.id)).toEqual(["new", "old"]);
    expect(config.keyEncryptionKeys?.[0]?.key.equals(a)).toBe(true);
  });

  it("keeps key ids verbatim (case-sensitive)", () => {
    const config = loadConfig({ DEVELOPMENT_MODE: "true", KEY_ENCRYPTION_KEYS: `Prod_2025-A:${key()},prod_2025-a:${key()}` });
    expect(config.keyEncryptionKeys?.map((k) => k.id)).toEqual(["Prod_2025-A", "prod_2025-a"]);
  });

  it('gives a bare key the id "k1"', () => {
    const k = randomBytes(32);
    const config = loadConfig({ DEVELOPMENT_MODE: "true", KEY_ENCRYPTION_KEYS: k.toString("base64") });
    expect(config.keyEncryptionKeys).toHaveLength(1);
    expect(config.keyEncryptionKeys?.[0]?.id).toBe("k1");
    expect(config.keyEncryptionKeys?.[0]?.key.equals(k)).toBe(true);
  });

  it("decodes BLIND_INDEX_KEY", () => {
    const k = randomBytes(32);
    expect(loadConfig({ DEVELOPMENT_MODE: "true", BLIND_INDEX_KEY: k.toString("base64") }).blindIndexKey?.equals(k)).toBe(true);
  });
});

describe("development mode is an explicit choice once production is in sight", () => {
  it("is implicit on an environment with no production variable", () => {
    expect(loadConfig({}).development).toBe(true);
    expect(loadConfig({ PORT: "9000", LOG_LEVEL: "debug" }).development).toBe(true);
  });

  it("refuses the embedded mode when a production variable is set without MYSQL_URL and REDIS_URL", () => {
    for (const [name, value] of [
      ["KEY_ENCRYPTION_KEYS", key()],
      ["BLIND_INDEX_KEY", key()],
      ["SMTP_URL", "smtp://mail"],
      ["REDIS_KEY_PREFIX", "prod:"],
      ["PASSWORD_PEPPER", "p"],
    ] as const) {
      const message = configError({ [name]: value }).message;
      expect(message).toMatch(/^invalid configuration: MYSQL_URL /);
      expect(message).toContain(name);
      expect(message).toContain("DEVELOPMENT_MODE=true");
    }
  });

  it("refuses the embedded mode when MYSQL_URL or REDIS_URL is misspelled", () => {
    const message = configError({ MYSQL_ULR: "mysql://db/identity", REDIS_URI: "redis://cache" }).message;
    expect(message).toContain("MYSQL_ULR");
    expect(message).toContain("REDIS_URI");
  });

  it("accepts production variables in development mode when DEVELOPMENT_MODE is set", () => {
    const config = loadConfig({ DEVELOPMENT_MODE: "true", SMTP_URL: "smtp://mail" });
    expect(config.development).toBe(true);
    expect(config.mysqlUrl).toBeUndefined();
  });

  it("is off in production unless asked for, and DEVELOPMENT_MODE takes only true or false", () => {
    expect(loadConfig(server()).development).toBe(false);
    expect(loadConfig(server({ DEVELOPMENT_MODE: "1" })).development).toBe(true);
    expect(loadConfig(server({ DEVELOPMENT_MODE: "false" })).development).toBe(false);
    expect(configError(server({ DEVELOPMENT_MODE: "yes please" })).message).toMatch(/^invalid configuration: DEVELOPMENT_MODE /);
  });
});

describe("unknown variables", () => {
  it("are warned about, with the likely intended name, when they carry one of the service's prefixes", () => {
    const config = loadConfig(server({ SMTP_ULR: "smtp://mail", LOG_LEVLE: "debug", HOME: "/root", TEST_X: "1" }));
    expect(config.warnings).toEqual([
      "unknown variable LOG_LEVLE is ignored (did you mean LOG_LEVEL?)",
      "unknown variable SMTP_ULR is ignored (did you mean SMTP_URL?)",
    ]);
    expect(loadConfig(server()).warnings).toEqual([]);
  });
});

describe("backend timeouts", () => {
  it("have bounded defaults and are read from the environment", () => {
    expect(loadConfig({}).timeouts).toEqual({ mysqlConnectMs: 2000, mysqlQueryMs: 10_000, redisConnectMs: 2000, redisCommandMs: 2000, socialProviderMs: 5000 });
    const config = loadConfig(
      server({
        MYSQL_CONNECT_TIMEOUT_MS: "500",
        MYSQL_QUERY_TIMEOUT_MS: "30000",
        REDIS_CONNECT_TIMEOUT_MS: "700",
        REDIS_COMMAND_TIMEOUT_MS: "300",
        SOCIAL_PROVIDER_TIMEOUT_MS: "900",
      }),
    );
    expect(config.timeouts).toEqual({ mysqlConnectMs: 500, mysqlQueryMs: 30000, redisConnectMs: 700, redisCommandMs: 300, socialProviderMs: 900 });
    expect(configError(server({ REDIS_COMMAND_TIMEOUT_MS: "0" })).message).toMatch(/^invalid configuration: REDIS_COMMAND_TIMEOUT_MS /);
  });
});

describe("assertServable", () => {
  it("refuses production without SMTP_URL: messages would put live links in the log", () => {
    let error: unknown;
    try {
      assertServable(loadConfig(server()));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^invalid configuration: SMTP_URL /);
    expect(() => assertServable(loadConfig(server({ SMTP_URL: "smtp://mail", SMS_PROVIDER: "none" })))).not.toThrow();
    expect(() => assertServable(loadConfig(server({ DEVELOPMENT_MODE: "true" })))).not.toThrow();
    expect(() => assertServable(loadConfig({}))).not.toThrow();
  });

  it("refuses production without an SMS provider (phone codes would have nowhere to go), unless SMS_PROVIDER=none says so", () => {
    const refusal = (env: Record<string, string>) => {
      try {
        assertServable(loadConfig(server({ SMTP_URL: "smtp://mail", ...env })));
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      return undefined;
    };
    expect(refusal({})).toMatch(
      /^invalid configuration: SMS_PROVIDER is required .*SMS_WEBHOOK_URL.*TWILIO_ACCOUNT_SID.*SMS_PROVIDER=none.*DEVELOPMENT_MODE=true/,
    );
    expect(refusal({ SMS_PROVIDER: "none" })).toBeUndefined();
    expect(refusal({ SMS_WEBHOOK_URL: "https://sms.example.com/hook", SMS_WEBHOOK_SECRET: "x".repeat(32) })).toBeUndefined();
    expect(refusal({ TWILIO_ACCOUNT_SID: `AC${"a".repeat(32)}`, TWILIO_AUTH_TOKEN: "t", TWILIO_FROM: "+15005550006" })).toBeUndefined();
    expect(() => assertServable(loadConfig({ DEVELOPMENT_MODE: "true" }))).not.toThrow();
  });
});

describe("SMS provider", () => {
  const SID = `AC${"0123456789abcdef".repeat(2)}`;
  const secret = "s".repeat(32);

  it("none by default: development mode logs SMS", () => {
    expect(loadConfig({}).sms).toBeUndefined();
    expect(loadConfig({ SMS_PROVIDER: "none" }).sms).toEqual({ provider: "none" });
  });

  it("the webhook, chosen by its URL or by SMS_PROVIDER", () => {
    const env = { SMS_WEBHOOK_URL: "https://sms.example.com/hook", SMS_WEBHOOK_SECRET: secret };
    expect(loadConfig(server(env)).sms).toEqual({ provider: "webhook", url: "https://sms.example.com/hook", secret });
    expect(loadConfig(server({ ...env, SMS_PROVIDER: "webhook" })).sms?.provider).toBe("webhook");
    expect(configError(server({ SMS_WEBHOOK_URL: "https://sms.example.com/hook" })).message).toMatch(
      /^invalid configuration: SMS_WEBHOOK_SECRET must be at least 32/,
    );
    expect(configError(server({ ...env, SMS_WEBHOOK_SECRET: "short" })).message).toMatch(/SMS_WEBHOOK_SECRET/);
    expect(configError(server({ SMS_PROVIDER: "webhook" })).message).toMatch(/^invalid configuration: SMS_WEBHOOK_URL is required/);
    expect(configError(server({ ...env, SMS_WEBHOOK_URL: "ftp://x" })).message).toMatch(/^invalid configuration: SMS_WEBHOOK_URL must use http: or https:/);
  });

  it("plain http only to this host or in development mode: the request carries a live code", () => {
    expect(configError(server({ SMS_WEBHOOK_URL: "http://sms.example.com/hook", SMS_WEBHOOK_SECRET: secret })).message).toMatch(
      /SMS_WEBHOOK_URL must use https/,
    );
    expect(loadConfig(server({ SMS_WEBHOOK_URL: "http://127.0.0.1:9000/hook", SMS_WEBHOOK_SECRET: secret })).sms?.provider).toBe("webhook");
    expect(loadConfig({ SMS_WEBHOOK_URL: "http://sms.internal/hook", SMS_WEBHOOK_SECRET: secret, DEVELOPMENT_MODE: "true" }).sms?.provider).toBe("webhook");
    expect(configError(server({ SMS_WEBHOOK_URL: "https://user:pw@sms.example.com/", SMS_WEBHOOK_SECRET: secret })).message).toMatch(
      /must not carry credentials/,
    );
  });

  it("Twilio, with a From number, an alphanumeric sender or a Messaging Service", () => {
    const base = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: "token" };
    expect(loadConfig(server({ ...base, TWILIO_FROM: "+15005550006" })).sms).toEqual({
      provider: "twilio",
      accountSid: SID,
      authToken: "token",
      from: "+15005550006",
      messagingServiceSid: undefined,
      apiUrl: "https://api.twilio.com",
    });
    expect(loadConfig(server({ ...base, TWILIO_FROM: "Acme ID" })).sms).toMatchObject({ from: "Acme ID" });
    const mg = `MG${"b".repeat(32)}`;
    expect(loadConfig(server({ ...base, TWILIO_MESSAGING_SERVICE_SID: mg, TWILIO_API_URL: "http://127.0.0.1:4010/" })).sms).toMatchObject({
      messagingServiceSid: mg,
      from: undefined,
      apiUrl: "http://127.0.0.1:4010",
    });
    expect(configError(server({ ...base })).message).toMatch(/^invalid configuration: TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required/);
    expect(configError(server({ ...base, TWILIO_FROM: "+15005550006", TWILIO_MESSAGING_SERVICE_SID: mg })).message).toMatch(/TWILIO_FROM/);
    expect(configError(server({ ...base, TWILIO_FROM: "not a sender id!" })).message).toMatch(/^invalid configuration: TWILIO_FROM must be/);
    expect(configError(server({ ...base, TWILIO_FROM: "+1", TWILIO_ACCOUNT_SID: "AC123" })).message).toMatch(/^invalid configuration: TWILIO_ACCOUNT_SID/);
    expect(configError(server({ ...base, TWILIO_FROM: "Acme", TWILIO_AUTH_TOKEN: "" })).message).toMatch(/^invalid configuration: TWILIO_AUTH_TOKEN/);
    expect(configError(server({ ...base, TWILIO_MESSAGING_SERVICE_SID: "MG1" })).message).toMatch(/TWILIO_MESSAGING_SERVICE_SID/);
    expect(configError(server({ ...base, TWILIO_FROM: "Acme", TWILIO_API_URL: "http://api.twilio.com" })).message).toMatch(/TWILIO_API_URL must use https/);
  });

  it("refuses two providers at once, or a provider's variables under another choice", () => {
    const webhook = { SMS_WEBHOOK_URL: "https://sms.example.com/hook", SMS_WEBHOOK_SECRET: secret };
    const twilio = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: "token", TWILIO_FROM: "Acme" };
    expect(configError(server({ ...webhook, ...twilio })).message).toMatch(/^invalid configuration: SMS_PROVIDER must choose webhook or twilio/);
    expect(configError(server({ ...webhook, ...twilio, SMS_PROVIDER: "twilio" })).message).toMatch(
      /^invalid configuration: SMS_WEBHOOK_URL is set but SMS_PROVIDER is twilio/,
    );
    expect(configError(server({ ...twilio, SMS_PROVIDER: "none" })).message).toMatch(
      /^invalid configuration: TWILIO_ACCOUNT_SID is set but SMS_PROVIDER is none/,
    );
    expect(configError(server({ SMS_PROVIDER: "vonage" })).message).toMatch(/^invalid configuration: SMS_PROVIDER must be webhook, twilio or none/);
  });

  it("a misspelled SMS or Twilio variable is warned about", () => {
    expect(loadConfig({ SMS_WEBHOOK_SECRT: "x", TWILIO_ACOUNT_SID: "y" }).warnings).toEqual([
      "unknown variable SMS_WEBHOOK_SECRT is ignored (did you mean SMS_WEBHOOK_SECRET?)",
      "unknown variable TWILIO_ACOUNT_SID is ignored (did you mean TWILIO_ACCOUNT_SID?)",
    ]);
  });

  it("a provider set without MYSQL_URL and REDIS_URL asks for DEVELOPMENT_MODE, like SMTP_URL", () => {
    expect(configError({ SMS_WEBHOOK_URL: "https://sms.example.com/hook", SMS_WEBHOOK_SECRET: secret }).message).toMatch(/SMS_WEBHOOK_URL is/);
  });
});

describe("outbox retry settings", () => {
  it("retries for two days by default, 30 s doubling up to an hour apart", () => {
    expect(loadConfig({}).outboxRetry).toEqual({ baseDelayMs: 30_000, maxDelayMs: 3_600_000, maxAgeMs: 172_800_000 });
  });

  it("reads OUTBOX_MAX_AGE_SECONDS, OUTBOX_RETRY_BASE_SECONDS and OUTBOX_RETRY_MAX_DELAY_SECONDS", () => {
    const config = loadConfig({ OUTBOX_MAX_AGE_SECONDS: "259200", OUTBOX_RETRY_BASE_SECONDS: "10", OUTBOX_RETRY_MAX_DELAY_SECONDS: "7200" });
    expect(config.outboxRetry).toEqual({ baseDelayMs: 10_000, maxDelayMs: 7_200_000, maxAgeMs: 259_200_000 });
  });

  it("refuses a maximum delay below the first delay, and out-of-range values, naming the variable", () => {
    expect(configError({ OUTBOX_RETRY_BASE_SECONDS: "600", OUTBOX_RETRY_MAX_DELAY_SECONDS: "60" }).message).toContain("OUTBOX_RETRY_MAX_DELAY_SECONDS");
    expect(configError({ OUTBOX_MAX_AGE_SECONDS: "10" }).message).toContain("OUTBOX_MAX_AGE_SECONDS");
    expect(configError({ OUTBOX_RETRY_BASE_SECONDS: "soon" }).message).toContain("OUTBOX_RETRY_BASE_SECONDS");
  });
});

describe("REDIS_CLUSTER_NODES", () => {
  const cluster = (nodes: string, extra: Record<string, string | undefined> = {}) => server({ REDIS_URL: undefined, REDIS_CLUSTER_NODES: nodes, ...extra });

  it("lists a Redis Cluster's seed nodes instead of REDIS_URL: production, not the embedded store", () => {
    const config = loadConfig(cluster("10.0.0.1:7000, redis-b.internal:7001,[2001:db8::5]:7002"));
    expect(config.redisClusterNodes).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b.internal", port: 7001 },
      { host: "2001:db8::5", port: 7002 },
    ]);
    expect(config.redisUrl).toBeUndefined();
    expect(config.development).toBe(false);
    expect(Object.isFrozen(config.redisClusterNodes)).toBe(true);
    expect(loadConfig(server()).redisClusterNodes).toBeUndefined();
    expect(loadConfig(server({ REDIS_CLUSTER_NODES: "" })).redisClusterNodes).toBeUndefined();
  });

  it.each([
    ["both REDIS_URL and REDIS_CLUSTER_NODES", server({ REDIS_CLUSTER_NODES: "10.0.0.1:7000" }), "REDIS_CLUSTER_NODES"],
    ["a node without a port", cluster("10.0.0.1:7000,10.0.0.2"), "REDIS_CLUSTER_NODES"],
    ["a port out of range", cluster("10.0.0.1:70000"), "REDIS_CLUSTER_NODES"],
    ["a URL instead of host:port", cluster("redis://10.0.0.1:7000"), "REDIS_CLUSTER_NODES"],
    ["an empty entry", cluster("10.0.0.1:7000,,10.0.0.2:7000"), "REDIS_CLUSTER_NODES"],
    ["an IPv6 address without brackets", cluster("2001:db8::5:7000"), "REDIS_CLUSTER_NODES"],
    ["REDIS_CLUSTER_NODES without MYSQL_URL", { REDIS_CLUSTER_NODES: "10.0.0.1:7000" }, "MYSQL_URL"],
    ["a key prefix with a hash tag: every key on one slot", cluster("10.0.0.1:7000", { REDIS_KEY_PREFIX: "{identity}:" }), "REDIS_KEY_PREFIX"],
  ])("refuses %s, naming the variable", (_name, env, variable) => {
    expect(configError(env).message.startsWith(`invalid configuration: ${variable} `)).toBe(true);
  });

  it("MYSQL_URL alone asks for REDIS_URL or REDIS_CLUSTER_NODES", () => {
    expect(configError({ MYSQL_URL: "mysql://db/identity" }).message).toMatch(/REDIS_URL \(or REDIS_CLUSTER_NODES\) is required/);
  });

  it("is a known variable (no unknown-variable warning)", () => {
    expect(loadConfig(cluster("10.0.0.1:7000")).warnings).toEqual([]);
  });
});
