// Top functions of V8 CPU profiles (`node --cpu-prof`), summed over every file given:
//   node bench/profile-top.ts <dir or .cpuprofile files> [top] [--inclusive] [--callers NAME]
// Self time by default; --inclusive: time with everything a function called (each
// function counted once per sample, however deep it recurses); --callers NAME: the
// call paths (innermost first) that lead to the functions whose name contains NAME.
// Profile the service's sign-in path (only the service's processes are profiled):
//   BENCH_CPU_PROF=/tmp/prof BENCH_SKIP_VALIDATE=1 BENCH_SECONDS=8 npm run bench
//   npx node bench/profile-top.ts /tmp/prof 25
// (argon2 runs on the libuv threadpool, so its time is not in a main-thread
// profile: what is listed is everything else the process does per call.)
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const inclusive = args.includes("--inclusive");
const callersAt = args.indexOf("--callers");
const callersOf = callersAt >= 0 ? args[callersAt + 1] : undefined;
const positional = args.filter((a, i) => !a.startsWith("--") && (callersAt < 0 || i !== callersAt + 1));
const top = Number(positional.find((a) => /^\d+$/.test(a)) ?? 30);
const paths = positional.filter((a) => !/^\d+$/.test(a));
const files = paths.flatMap((path) =>
  statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith(".cpuprofile"))
        .map((f) => join(path, f))
    : [path],
);
// A directory the bench profiled into (BENCH_CPU_PROF) holds window.json: the sign-in load's
// span on the profiles' clock (CLOCK_MONOTONIC, µs); only the samples within it count.
const windowFile = paths.map((a) => join(a, "window.json")).find((f) => existsSync(f));
const window = windowFile ? (JSON.parse(readFileSync(windowFile, "utf8")) as { phase: string; fromUs: number; toUs: number }) : undefined;
if (window) process.stdout.write(`samples within ${window.phase} only (${((window.toUs - window.fromUs) / 1e6).toFixed(1)} s, ${windowFile})\n`);

const nameOf = (frame: ProfileNode["callFrame"]) => {
  const where = frame.url ? `${frame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench|gen)\//, "$1/")}:${frame.lineNumber + 1}` : "";
  return `${frame.functionName || "(anonymous)"} ${where}`.trim();
};
const IDLE = "(idle)";
const timeUs = new Map<string, number>();
let totalUs = 0;
let idleUs = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    totalUs += delta;
    const leaf = nameOf(byId.get(id)!.callFrame);
    if (leaf === IDLE) return void (idleUs += delta);
    const stack: string[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) stack.push(nameOf(byId.get(n)!.callFrame));
    stack.pop(); // (root)
    let keys: string[];
    if (callersOf !== undefined) {
      const hit = stack.findIndex((name) => name.includes(callersOf));
      if (hit < 0) return;
      // Node's own frames (streams, sockets) left out above the match: the paths name who called.
      const outer = stack.slice(hit + 1).filter((name) => !/ node:/.test(name) && !name.startsWith("("));
      keys = [[stack[hit]!, ...outer.slice(0, 6)].map((name) => name.replace(/ \S+$/, (where) => (/(src|bench)\//.test(where) ? where : ""))).join(" ← ")];
    } else keys = inclusive ? [...new Set(stack)] : [leaf];
    for (const key of keys) timeUs.set(key, (timeUs.get(key) ?? 0) + delta);
  });
}
const busyUs = totalUs - idleUs;
process.stdout.write(
  `${files.length} profile(s), ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s not idle; ${inclusive ? "inclusive" : callersOf !== undefined ? `paths to "${callersOf}"` : "self"} time\n`,
);
for (const [key, us] of [...timeUs].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  process.stdout.write(`${((100 * us) / busyUs).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}\n`);
}
