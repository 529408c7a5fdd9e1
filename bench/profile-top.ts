// Top self-time functions of V8 CPU profiles (`node --cpu-prof`), summed over
// every file given: `node bench/profile-top.ts <dir or .cpuprofile files> [top]`.
// Profile the service's sign-in path, for example:
//   NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof" BENCH_SKIP_VALIDATE=1 npm run bench
//   node bench/profile-top.ts /tmp/prof 25
// (argon2 runs on the libuv threadpool, so its time is not in a main-thread
// profile: what is listed is everything else the process does per call.)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => /^\d+$/.test(a)) ?? 30);
const files = args
  .filter((a) => !/^\d+$/.test(a))
  .flatMap((path) =>
    statSync(path).isDirectory()
      ? readdirSync(path)
          .filter((f) => f.endsWith(".cpuprofile"))
          .map((f) => join(path, f))
      : [path],
  );
const selfUs = new Map<string, number>();
let totalUs = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url ? `${frame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench|gen)\//, "$1/")}:${frame.lineNumber + 1}` : "";
    const key = `${frame.functionName || "(anonymous)"} ${where}`.trim();
    const delta = profile.timeDeltas[i] ?? 0;
    selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
    totalUs += delta;
  });
}
const busyUs = totalUs - (selfUs.get("(idle)") ?? 0);
process.stdout.write(`${files.length} profile(s), ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s not idle\n`);
for (const [key, us] of [...selfUs]
  .filter(([k]) => k !== "(idle)")
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)) {
  process.stdout.write(`${((100 * us) / busyUs).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}\n`);
}
