// `npm run admin -- create-super-admin | create-api-key`, on an open runtime
// (the service's own wiring, so data is sealed the same way; src/cli/admin.ts
// opens it, tests pass theirs). Usage: docs/administration.md.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { DomainError } from "../domain/errors.ts";
import { PERMISSIONS } from "../domain/principal.ts";
import type { Runtime } from "../server/wiring.ts";

export const ADMIN_USAGE = `usage:
  npm run admin -- create-super-admin --email <address> --password-stdin [--promote]
  npm run admin -- create-api-key --tenant <id> --name <text> --permissions <${PERMISSIONS.join(",")}>
`;

export interface AdminIo {
  /** Everything on standard input (read only when a command asks for it). */
  readStdin(): Promise<string>;
  /** Machine-readable results: the account id, the API key's secret. */
  out(text: string): void;
  /** Messages for the operator. */
  err(text: string): void;
}

class UsageError extends Error {}

/** Runs one command; resolves with the process exit code (0 done, 1 refused, 2 usage). */
export async function runAdminCommand(runtime: Runtime, argv: readonly string[], io: AdminIo): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === "create-super-admin") return await createSuperAdmin(runtime, rest, io);
    if (command === "create-api-key") return await createApiKey(runtime, rest, io);
    throw new UsageError(command === undefined ? "a command is required" : `unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`${(error as Error).message}\n${ADMIN_USAGE}`);
      return 2;
    }
    if (error instanceof DomainError) {
      io.err(`refused: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig["options"]>) {
  return parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
}

const systemEvent = { actor: "system", reason: "", ip: "", userAgent: "identity admin cli", outcome: "success" } as const;

async function createSuperAdmin(runtime: Runtime, args: readonly string[], io: AdminIo): Promise<number> {
  const values = parse(args, { email: { type: "string" }, "password-stdin": { type: "boolean" }, promote: { type: "boolean" } });
  if (typeof values.email !== "string") throw new UsageError("--email is required");
  if (values["password-stdin"] !== true)
    throw new UsageError("--password-stdin is required (a password on the command line would be seen by other users of this machine)");
  const password = (await io.readStdin()).replace(/\r?\n$/, "");
  const { accountId, outcome } = await runtime.bootstrap.createSuperAdmin({ email: values.email, password, promote: values.promote === true });
  if (outcome !== "exists") {
    await runtime.app.audit.record({
      ...systemEvent,
      tenantId: "default",
      action: outcome === "created" ? "admin.super_admin_created" : "admin.super_admin_promoted",
      target: `account:${accountId}`,
    });
  }
  io.out(`${accountId}\n`);
  io.err(
    outcome === "created"
      ? "super admin created (verified and active)\n"
      : outcome === "promoted"
        ? "existing account promoted to super admin: password replaced, sessions ended\n"
        : "a super admin with this email already exists; nothing changed\n",
  );
  return 0;
}

async function createApiKey(runtime: Runtime, args: readonly string[], io: AdminIo): Promise<number> {
  const values = parse(args, { tenant: { type: "string" }, name: { type: "string" }, permissions: { type: "string" } });
  if (typeof values.tenant !== "string") throw new UsageError("--tenant is required");
  if (typeof values.name !== "string") throw new UsageError("--name is required");
  if (typeof values.permissions !== "string") throw new UsageError("--permissions is required");
  const tenant = await runtime.app.tenants.get(values.tenant);
  const permissions = values.permissions
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const { key, secret } = await runtime.app.apiKeys.create({ tenantId: tenant.id, name: values.name, permissions, createdBy: "system" });
  await runtime.app.audit.record({ ...systemEvent, tenantId: tenant.id, action: "api_key.create", target: `api_key:${key.id}` });
  io.out(`${secret}\n`);
  io.err(`API key ${key.id} created in tenant ${tenant.id} with ${key.permissions.join(", ")}; the secret above is shown only now\n`);
  return 0;
}
