// `npm run breaking`: `buf breaking` against the contract of the last release, so
// a change that would break published clients (@identity-service/client) fails
// CI. The last release is the newest `v*` tag when this clone has tags; a fresh
// clone without them (CI's shallow checkout, `--no-tags`) still has
// proto/baseline.binpb, the image of the contract committed at the last release
// (`npm run contract:baseline` writes it; see docs/clients.md#releasing).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const BASELINE = "proto/baseline.binpb";

function lastReleaseTag(): string | undefined {
  try {
    const tag = execFileSync("git", ["describe", "--tags", "--abbrev=0", "--match", "v[0-9]*"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    return tag === "" ? undefined : tag;
  } catch {
    return undefined; // no tag reachable, or not a git checkout
  }
}

const tag = lastReleaseTag();
const against = tag ? `.git#tag=${tag}` : BASELINE;
if (!tag && !existsSync(BASELINE)) {
  process.stderr.write(`breaking: no v* tag and no ${BASELINE}: nothing to compare with\n`);
  process.exit(1);
}
process.stdout.write(`breaking: comparing proto/ with ${tag ? `the release tag ${tag}` : `${BASELINE} (the last release's image)`}\n`);
const result = spawnSync("buf", ["breaking", "--against", against], { stdio: "inherit" });
process.exit(result.status ?? 1);
