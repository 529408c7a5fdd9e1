// `npm run outbox -- list-failed | requeue`: what to do with messages the outbox
// gave up on, on an open runtime (src/cli/outbox.ts opens it; tests pass theirs).
// Usage and output: docs/delivery.md.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { DomainError } from "../domain/errors.ts";
import type { FailedMessage } from "../domain/ports/outbox.ts";
import type { Runtime } from "../server/wiring.ts";

export const OUTBOX_USAGE = `usage:
  npm run outbox -- list-failed [--tenant <id>] [--limit <n>] [--json]
  npm run outbox -- requeue <message id> [--tenant <id>]
  npm run outbox -- requeue --all [--tenant <id>]
`;

export interface OutboxIo {
  /** Results: the listing, the requeued count. */
  out(text: string): void;
  /** Messages for the operator. */
  err(text: string): void;
}

class UsageError extends Error {}

/** Runs one command; resolves with the process exit code (0 done, 1 refused, 2 usage). */
export async function runOutboxCommand(runtime: Runtime, argv: readonly string[], io: OutboxIo): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === "list-failed") return await listFailed(runtime, rest, io);
    if (command === "requeue") return await requeue(runtime, rest, io);
    throw new UsageError(command === undefined ? "a command is required" : `unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`${(error as Error).message}\n${OUTBOX_USAGE}`);
      return 2;
    }
    if (error instanceof DomainError) {
      io.err(`refused: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig["options"]>, positionals = false) {
  const parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: positionals });
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
}

function tenantOf(values: Record<string, string | boolean | undefined>): string | undefined {
  if (values.tenant === undefined) return undefined;
  if (typeof values.tenant !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(values.tenant)) throw new UsageError("--tenant must be a tenant id");
  return values.tenant;
}

const time = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

const COLUMNS = ["id", "tenant", "kind", "attempts", "class", "last_error", "created", "failed", "queued", "requeueable"];

function row(m: FailedMessage): string {
  return [
    m.id,
    m.tenantId,
    m.kind,
    String(m.attempts),
    m.lastErrorClass,
    m.lastError || "-",
    time(m.createdAt),
    time(m.failedAt),
    time(m.queuedAt),
    m.requeueable ? "yes" : "no",
  ].join("\t");
}

async function listFailed(runtime: Runtime, args: readonly string[], io: OutboxIo): Promise<number> {
  const { values } = parse(args, { tenant: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" } });
  const tenantId = tenantOf(values);
  const limit = values.limit === undefined ? 1000 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError("--limit must be a positive integer");
  if (values.json !== true) io.out(`${COLUMNS.join("\t")}\n`);
  let shown = 0;
  let pageToken = "";
  do {
    const page = await runtime.app.failedMessages.list({ ...(tenantId !== undefined ? { tenantId } : {}), pageSize: Math.min(500, limit - shown), pageToken });
    for (const m of page.messages) io.out(values.json === true ? `${JSON.stringify(m)}\n` : `${row(m)}\n`);
    shown += page.messages.length;
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && shown < limit);
  io.err(`${shown} failed message${shown === 1 ? "" : "s"}${pageToken !== "" ? ` (more: raise --limit)` : ""}\n`);
  return 0;
}

const systemEvent = { actor: "system", ip: "", userAgent: "identity outbox cli", outcome: "success" } as const;

async function requeue(runtime: Runtime, args: readonly string[], io: OutboxIo): Promise<number> {
  const { values, positionals } = parse(args, { tenant: { type: "string" }, all: { type: "boolean" } }, true);
  const tenantId = tenantOf(values);
  if (values.all === true) {
    if (positionals.length > 0) throw new UsageError("give a message id or --all, not both");
    const count = await runtime.app.failedMessages.requeueAll(tenantId !== undefined ? { tenantId } : {});
    await runtime.app.audit.record({
      ...systemEvent,
      tenantId: tenantId ?? "default",
      action: "outbox.requeue",
      target: tenantId ? `tenant:${tenantId}` : "",
      reason: `requeued ${count} failed messages of ${tenantId ? "the tenant" : "every tenant"}`,
    });
    io.out(`${count}\n`);
    io.err(`${count} failed message${count === 1 ? "" : "s"} requeued\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("requeue needs one message id (or --all)");
  const id = positionals[0]!;
  const { tenantId: messageTenant } = await runtime.app.failedMessages.requeue({ id, ...(tenantId !== undefined ? { tenantId } : {}) });
  await runtime.app.audit.record({ ...systemEvent, tenantId: messageTenant, action: "outbox.requeue", target: `message:${id}`, reason: "" });
  io.out(`${id}\n`);
  io.err(`message ${id} requeued\n`);
  return 0;
}
