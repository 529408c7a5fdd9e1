// `npm run outbox -- <command>`: failed messages — list them, requeue them (see
// ./outbox-command.ts and docs/delivery.md). Opens the configured database and
// Redis exactly as the service does (createRuntime, without delivering), runs
// one command, exits.
import { ConfigError, loadConfig } from "../config.ts";
import { createLogger } from "../server/logger.ts";
import { createRuntime } from "../server/wiring.ts";
import { OUTBOX_USAGE, runOutboxCommand } from "./outbox-command.ts";

const argv = process.argv.slice(2);
if (argv.length === 0 || argv[0] === "--help" || argv[0] === "help") {
  process.stdout.write(OUTBOX_USAGE);
  process.exit(argv.length === 0 ? 2 : 0);
}

let code: number;
try {
  const config = loadConfig();
  // Warnings (e.g. the development-mode notice) go to stderr; stdout carries only results.
  const log = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, process.stderr);
  const runtime = await createRuntime(config, log, { deliver: false, purgeIntervalMs: 0 });
  try {
    code = await runOutboxCommand(runtime, argv, {
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
