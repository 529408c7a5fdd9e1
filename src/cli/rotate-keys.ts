// `npm run keys:rotate`: rewraps every data key under the first KEK, in batches,
// while the service serves; resumable. Exit 0 when every key is under the active
// KEK, 1 otherwise, 2 bad usage, 78 bad configuration. Steps: docs/privacy.md#key-rotation.
import { ConfigError, loadConfig } from "../config.ts";
import { countStaleKeys, rotateDataKeys, rotateSocialProviderKeys } from "../domain/key-rotation.ts";
import { keyringFor } from "../server/wiring.ts";
import { openDurableStores } from "../store/sql/open.ts";

/** Further passes when instances still wrapping with an old KEK add keys behind the first pass. */
const EXTRA_PASSES = 2;

function usage(): never {
  process.stderr.write("usage: npm run keys:rotate [-- --after <account id>] [--batch <1..5000>]\n");
  process.exit(2);
}

const argv = process.argv.slice(2);
let afterAccountId = "";
let batchSize = 200;
for (let i = 0; i < argv.length; i += 2) {
  const [flag, value] = [argv[i], argv[i + 1]];
  if (value === undefined) usage();
  if (flag === "--after") afterAccountId = value;
  else if (flag === "--batch" && /^[0-9]+$/.test(value) && Number(value) >= 1 && Number(value) <= 5000) batchSize = Number(value);
  else usage();
}

const write = (line: string) => process.stdout.write(`${line}\n`);
let code = 0;
try {
  const config = loadConfig();
  if (!config.keyEncryptionKeys) throw new ConfigError("KEY_ENCRYPTION_KEYS", "is not set: there is no configured key to rotate to");
  const keyring = keyringFor(config);
  const { stores } = await openDurableStores(config);
  try {
    const deps = { keys: stores.keys, keyring };
    write(`rewrapping every data key under KEK "${keyring.activeKekId}"${afterAccountId ? ` after account ${afterAccountId}` : ""}`);
    const report = (p: { scanned: number; rewrapped: number; skipped: number; failed: string[]; lastAccountId: string }) =>
      write(
        `scanned ${p.scanned}, rewrapped ${p.rewrapped}, changed meanwhile ${p.skipped}, unreadable ${p.failed.length} (last account ${p.lastAccountId || "-"})`,
      );
    const failed = new Set<string>();
    let pass = await rotateDataKeys(deps, { batchSize, afterAccountId, onBatch: report });
    pass.failed.forEach((id) => failed.add(id));
    let stale = await countStaleKeys(deps);
    for (let extra = 0; stale > failed.size && extra < EXTRA_PASSES; extra++) {
      write(`${stale} keys are still under an old KEK (created meanwhile, or before --after): another pass`);
      pass = await rotateDataKeys(deps, { batchSize, onBatch: report });
      pass.failed.forEach((id) => failed.add(id));
      stale = await countStaleKeys(deps);
    }
    if (failed.size > 0) {
      code = 1;
      write(
        `${failed.size} keys are wrapped by a KEK missing from KEY_ENCRYPTION_KEYS and were left as they are, e.g. account ${[...failed][0]}: add that KEK and run again`,
      );
    }
    if (stale > failed.size) {
      code = 1;
      write(`${stale - failed.size} keys are still wrapped by an old KEK: is every instance configured with "${keyring.activeKekId}" first? Then run again`);
    }
    // The social sign-in providers' keys (their client secrets and Apple keys are sealed under them).
    const providers = await rotateSocialProviderKeys({ providers: stores.socialProviders, keyring });
    write(
      `social providers: scanned ${providers.scanned}, rewrapped ${providers.rewrapped}, changed meanwhile ${providers.skipped}, unreadable ${providers.failed.length}`,
    );
    if (providers.stale > 0) {
      code = 1;
      write(
        `${providers.stale} social provider keys are still wrapped by an old KEK${providers.failed.length > 0 ? ` (unreadable, e.g. provider ${providers.failed[0]}: add its KEK)` : ""}: run again`,
      );
    }
    if (code === 0) write(`done: every data key is wrapped by "${keyring.activeKekId}"; the other KEKs can now be removed from KEY_ENCRYPTION_KEYS`);
  } finally {
    await stores.close();
  }
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  code = error instanceof ConfigError ? 78 : 1;
}
process.exit(code);
