// `npm run outbox -- <command>`: failed messages — list them, requeue them (see
// ./outbox-command.ts and docs/delivery.md). Opens the configured database and
// Redis exactly as the service does (createRuntime, without delivering), runs
// one command, exits.
import { OUTBOX_USAGE, runOutboxCommand } from "./outbox-command.ts";
import { runCliCommand } from "./run-command.ts";

await runCliCommand(OUTBOX_USAGE, { purgeIntervalMs: 0 }, (runtime, argv) =>
  runOutboxCommand(runtime, argv, {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  }),
);
