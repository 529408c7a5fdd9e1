// `npm run admin -- <command>`: operator commands (see ./admin-command.ts and
// the README's "Administration" section). Opens the configured database and
// Redis exactly as the service does (createRuntime), runs one command, exits.
import { ConfigError, loadConfig } from "../config.ts";
import { createLogger } from "../server/logger.ts";
import { createRuntime } from "../server/wiring.ts";
import { ADMIN_USAGE, runAdminCommand } from "./admin-command.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const argv = process.argv.slice(2);
if (argv.length === 0 || argv[0] === "--help" || argv[0] === "help") {
  process.stdout.write(ADMIN_USAGE);
  process.exit(argv.length === 0 ? 2 : 0);
}

let code: number;
try {
  const config = loadConfig();
  // Warnings (e.g. the development-mode notice) go to stderr; stdout carries only results.
  const log = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, process.stderr);
  const runtime = await createRuntime(config, log, { deliver: false });
  try {
    code = await runAdminCommand(runtime, argv, {
      readStdin,
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
  } finally {
    await runtime.close();
  }
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
  code = error instanceof ConfigError ? 78 : 1;
}
process.exit(code);
