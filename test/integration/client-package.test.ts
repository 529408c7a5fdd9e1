// The published client, proven from the outside: `npm pack` of packages/client,
// installed from the tarball into a fresh project outside the repository (its
// dependencies come from the registry, nothing from this workspace), a consumer
// file type-checked with tsc and run against a live server over gRPC and
// Connect, and the browser entry bundled by esbuild for the browser platform
// (which fails on any Node built-in).
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { DEFAULT_TENANT_ID } from "../../src/domain/tenants.ts";
import { createCaller } from "../support/clients.ts";
import { linkToken, startTestServer, type TestServer } from "../support/server.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);

const CONSUMER = `
import { Code, ConnectError, createNodeClients, createSessionValidator, errorReason, type ErrorReason, Role } from "@identity-service/client/node";

const [baseUrl, sessionToken, apiKey] = process.argv.slice(2) as [string, string, string];
const out: Record<string, unknown> = {};

for (const protocol of ["grpc", "connect"] as const) {
  const anonymous = createNodeClients(baseUrl, { protocol });
  const valid = await anonymous.sessions.validateSession({ sessionToken });
  const me = createNodeClients(baseUrl, { protocol, credential: sessionToken });
  const listed = await me.sessions.listSessions({});
  let reason: ErrorReason | undefined;
  try {
    await anonymous.sessions.validateSession({ sessionToken: sessionToken + "x" });
  } catch (error) {
    reason = errorReason(error);
    if (!(error instanceof ConnectError) || error.code !== Code.Unauthenticated) throw error;
  }
  out[protocol] = { accountId: valid.accountId, isUser: valid.role === Role.USER, sessions: listed.sessions.length, reason };
}

const validator = createSessionValidator({ baseUrl, apiKey });
if (!(await validator.live())) throw new Error("the revocation stream did not come up");
const checked = await validator.validate(sessionToken);
out.validator = { accountId: checked.accountId, cached: validator.size };
validator.close();
console.log(JSON.stringify(out));
`;

const BROWSER = `
import { createWebClients, errorReason } from "@identity-service/client/web";
const clients = createWebClients(location.origin, { protocol: "grpc-web", credential: () => localStorage.getItem("token") ?? undefined });
clients.sessions.listSessions({}).catch((e) => console.log(errorReason(e)));
`;

describe("the published client package, packed and installed like a consumer would", () => {
  let server: TestServer;
  let project: string;

  beforeAll(async () => {
    server = await startTestServer("embedded");
    project = mkdtempSync(join(tmpdir(), "identity-client-consumer-"));
  });
  afterAll(async () => {
    await server?.close();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it("packs, installs from the registry, type-checks, runs over gRPC and Connect, and bundles for the browser", { timeout: 120_000 }, async () => {
    // Pack: prepack builds dist/ from the committed gen/ (one source of truth).
    await run("npm", ["pack", "--pack-destination", project, "--silent"], { cwd: join(ROOT, "packages/client") });
    const tarball = readdirSync(project).find((f) => f.endsWith(".tgz"));
    expect(tarball).toMatch(/^identity-service-client-\d+\.\d+\.\d+\.tgz$/);
    const { stdout: listing } = await run("tar", ["-tzf", join(project, tarball!)]);
    expect(listing).toContain("package/dist/src/node.d.ts");
    expect(listing).toContain("package/dist/gen/identity/v1/session_service_pb.js");
    expect(listing).not.toContain("package/src/"); // sources and tests stay home

    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    const rootPackage = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        `./${tarball}`,
        `@types/node@${rootPackage.devDependencies["@types/node"]}`,
      ],
      { cwd: project, timeout: 90_000 },
    );
    // Installed as a real package, not a link into this repository.
    expect(readFileSync(join(project, "node_modules/@identity-service/client/package.json"), "utf8")).toContain('"name": "@identity-service/client"');

    writeFileSync(join(project, "consumer.ts"), CONSUMER);
    writeFileSync(join(project, "browser.ts"), BROWSER);
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          types: ["node"],
          lib: ["es2022", "dom"],
        },
        files: ["consumer.ts", "browser.ts"],
      }),
    );
    await run(bin("tsc"), ["-p", project], { cwd: project }).catch((error: { stdout?: string }) => {
      throw new Error(`tsc refused the consumer:\n${error.stdout}`);
    });

    // A live server: a signed-in user and an API key that may validate sessions.
    const caller = createCaller("grpc-js", server.baseUrl);
    const email = `consumer.${Date.now()}@example.test`;
    await caller.call(IdentityService.method.signUp, { email, password: "correct horse battery staple" });
    const mail = await server.waitForMail(email, (m) => m.text.includes("token="));
    const { sessionToken, accountId } = await caller.call(IdentityService.method.verifyIdentity, { token: linkToken(mail.text) });
    caller.close();
    const { secret } = await server.runtime.app.apiKeys.create({
      tenantId: DEFAULT_TENANT_ID,
      name: "consumer",
      permissions: ["sessions.validate"],
      createdBy: "test",
    });

    const { stdout } = await run(process.execPath, ["consumer.ts", server.baseUrl, sessionToken, secret], { cwd: project, timeout: 30_000 });
    const expected = { accountId, isUser: true, sessions: 1, reason: "SESSION_INVALID" };
    expect(JSON.parse(stdout)).toStrictEqual({ grpc: expected, connect: expected, validator: { accountId, cached: 1 } });

    // The browser entry: esbuild fails on any Node built-in when targeting the browser.
    await run(bin("esbuild"), ["browser.ts", "--bundle", "--platform=browser", "--format=esm", "--outfile=bundle.js", "--log-level=error"], { cwd: project });
    const bundle = readFileSync(join(project, "bundle.js"), "utf8");
    expect(bundle).toContain("application/grpc-web");
    expect(bundle).not.toMatch(/\bnode:|connect-node|require\("http2"\)/);
  });
});
