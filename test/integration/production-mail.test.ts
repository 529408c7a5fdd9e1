// Messages carry live links and codes. Outside development mode they are never
// written to the log: the service refuses to start without SMTP_URL (see
// startup.test.ts), and a runtime built without it anyway (the operator commands
// build one) keeps messages queued instead of logging them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { createCaller } from "../support/clients.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

describe.skipIf(!BACKENDS.includes("mysql"))("production (MySQL and Redis) without SMTP_URL", () => {
  let server: TestServer;
  const logLines: string[] = [];

  beforeAll(async () => {
    server = await startTestServer("mysql", {
      env: { SMTP_URL: "", LOG_LEVEL: "trace", OUTBOX_RETRY_BASE_SECONDS: "1", OUTBOX_RETRY_MAX_DELAY_SECONDS: "1" },
      logLines,
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it("never writes a verification link to the log", async () => {
    expect(server.config.development).toBe(false);
    const api = createCaller("connect-json-h1", server.baseUrl);
    await api.call(IdentityService.method.signUp, { email: `nomail.${Date.now()}@example.test`, password: "correct horse battery staple" });
    api.close();
    // Delivery is attempted (and fails) at least once.
    const deadline = Date.now() + 10_000;
    while (!logLines.some((line) => line.includes("message delivery failed")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(logLines.some((line) => line.includes("message delivery failed"))).toBe(true);
    const log = logLines.join("\n");
    expect(log).not.toContain("token=");
    expect(log).not.toContain("app.example.test/");
    expect(log).not.toContain("development transport");
  });
});
