// The shell of the operator CLIs: usage on no arguments, the runtime opened
// from the environment exactly as the service opens it (without delivering),
// one command run, the runtime closed, and the exit code (78: bad configuration).
import { ConfigError, loadConfig } from "../config.ts";
import { createLogger } from "../server/logger.ts";
import { createRuntime, type Runtime, type RuntimeOptions } from "../server/wiring.ts";

export async function runCliCommand(usage: string, options: RuntimeOptions, run: (runtime: Runtime, argv: string[]) => Promise<number>): Promise<never> {
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "help") {
    process.stdout.write(usage);
    process.exit(argv.length === 0 ? 2 : 0);
  }
  let code: number;
  try {
    const config = loadConfig();
    // Warnings (e.g. the development-mode notice) go to stderr; stdout carries only results.
    const log = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, process.stderr);
    const runtime = await createRuntime(config, log, { deliver: false, ...options });
    try {
      code = await run(runtime, argv);
    } finally {
      await runtime.close();
    }
  } catch (error) {
    process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
    code = error instanceof ConfigError ? 78 : 1;
  }
  process.exit(code);
}
