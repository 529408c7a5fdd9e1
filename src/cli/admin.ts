// `npm run admin -- <command>`: operator commands (see ./admin-command.ts and
// the README's "Administration" section). Opens the configured database and
// Redis exactly as the service does (createRuntime), runs one command, exits.
import { ADMIN_USAGE, runAdminCommand } from "./admin-command.ts";
import { runCliCommand } from "./run-command.ts";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

await runCliCommand(ADMIN_USAGE, {}, (runtime, argv) =>
  runAdminCommand(runtime, argv, {
    readStdin,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  }),
);
