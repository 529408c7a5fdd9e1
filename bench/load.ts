// Load generators for unary gRPC calls: h2load where installed, else a
// node:http2 client with the same connections × streams shape.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface LoadOptions {
  url: string; // http://host:port/path
  body: Buffer; // one gRPC-framed request
  connections: number;
  streams: number; // in flight per connection
  warmUpS: number;
  durationS: number;
  /** Length of one successful response's body (gRPC frame), to tell answers from trailers-only errors. */
  expectedResponseBytes: number;
}

export interface LoadResult {
  tool: string;
  calls: number; // completed in the measured window
  succeeded: number; // counted as OK by the tool's check (see `check`)
  callsPerS: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How `succeeded` was established, for the report. */
  check: string;
}

const running = new Set<ChildProcess>();
const tempFiles = new Set<string>();

/** Stops any load generator still running and removes its files (the bench was interrupted). */
export function stopLoad(): void {
  for (const child of running) child.kill("SIGKILL");
  for (const file of tempFiles) rmSync(file, { force: true });
}

export function h2loadPath(): string | undefined {
  if (process.env.BENCH_CLIENT === "node") return undefined;
  const found = spawnSync("h2load", ["--version"], { encoding: "utf8" });
  return found.status === 0 ? "h2load" : undefined;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function summarize(tool: string, latenciesMs: Float64Array, succeeded: number, windowS: number, check: string): LoadResult {
  const sorted = latenciesMs.slice().sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    tool,
    calls: sorted.length,
    succeeded,
    callsPerS: sorted.length / windowS,
    meanMs: sum / sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    check,
  };
}

/** h2load in timing mode; latencies come from its --log-file (measured window only). */
export async function runH2load(options: LoadOptions): Promise<LoadResult> {
  const stamp = `${process.pid}-${Date.now()}`;
  const bodyFile = join(tmpdir(), `identity-bench-body-${stamp}`);
  const logFile = join(tmpdir(), `identity-bench-log-${stamp}`);
  tempFiles.add(bodyFile).add(logFile);
  writeFileSync(bodyFile, options.body);
  try {
    const args = [
      "-c",
      String(options.connections),
      "-m",
      String(options.streams),
      "-t",
      "1",
      "-D",
      String(options.durationS),
      "--warm-up-time",
      String(options.warmUpS),
      "-d",
      bodyFile,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "--log-file",
      logFile,
      options.url,
    ];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
      running.add(child);
      child.once("exit", () => running.delete(child));
      let text = "";
      child.stdout.on("data", (c: Buffer) => (text += c));
      child.stderr.on("data", (c: Buffer) => (text += c));
      child.once("error", reject);
      child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`h2load exited ${code}:\n${text}`))));
    });
    const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
    const status2xx = Number(/status codes: (\d+) 2xx/.exec(output)?.[1] ?? 0);
    const dataBytes = Number(/traffic: .*?, .*? headers .*?, [\d.]+\w*B \((\d+)\) data/.exec(output)?.[1] ?? NaN);
    const rate = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(output)?.[1] ?? NaN);
    if (!requests) throw new Error(`cannot read h2load's output:\n${output}`);
    const done = Number(requests[3]);
    const lines = readFileSync(logFile, "utf8").split("\n").filter(Boolean);
    const latencies = new Float64Array(lines.length);
    lines.forEach((line, i) => (latencies[i] = Number(line.split("\t")[2]) / 1000));
    // h2load counts HTTP 2xx, but a gRPC error is also HTTP 200 (trailers-only, no
    // body): a response carrying at least one full response message is a real answer.
    const bytesPerResponse = dataBytes / Math.max(1, done);
    const answered = bytesPerResponse >= options.expectedResponseBytes ? status2xx : Math.floor(dataBytes / options.expectedResponseBytes);
    const result = summarize(
      "h2load",
      latencies,
      Math.min(answered, status2xx),
      options.durationS,
      `${Math.min(status2xx, done)}/${done} HTTP 2xx (h2load), ${bytesPerResponse.toFixed(0)} body bytes per response (an answer frame is ${options.expectedResponseBytes}, a gRPC error 0)`,
    );
    // h2load's own rate and count are authoritative; the log is for the percentiles.
    return { ...result, calls: done, callsPerS: rate };
  } finally {
    for (const file of [bodyFile, logFile]) {
      rmSync(file, { force: true });
      tempFiles.delete(file);
    }
  }
}

/** The fallback: connections × streams loops of unary calls over node:http2, in this process. */
export async function runNodeLoad(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const sessions = Array.from({ length: options.connections }, () => http2.connect(target.origin));
  await Promise.all(
    sessions.map(
      (s) =>
        new Promise<void>((resolve, reject) => {
          s.once("connect", () => resolve());
          s.once("error", reject);
        }),
    ),
  );
  const headers = { ":method": "POST", ":path": target.pathname, "content-type": "application/grpc", te: "trailers" };
  const started = performance.now();
  const measureFrom = started + options.warmUpS * 1000;
  const stopAt = measureFrom + options.durationS * 1000;
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let succeeded = 0;
  let failed = 0;
  const record = (ms: number, ok: boolean) => {
    if (count === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[count++] = ms;
    if (ok) succeeded++;
    else failed++;
  };
  const one = (session: http2.ClientHttp2Session) =>
    new Promise<void>((resolve) => {
      const at = performance.now();
      const stream = session.request(headers);
      let bytes = 0;
      let status: string | undefined;
      stream.on("response", (h) => (status = (h["grpc-status"] as string | undefined) ?? status));
      stream.on("trailers", (t) => (status = (t["grpc-status"] as string | undefined) ?? status));
      stream.on("data", (c: Buffer) => (bytes += c.length));
      stream.on("error", () => {});
      stream.once("close", () => {
        const end = performance.now();
        if (at >= measureFrom && end <= stopAt) record(end - at, status === "0" && bytes >= options.expectedResponseBytes);
        resolve();
      });
      stream.end(options.body);
    });
  const loop = async (session: http2.ClientHttp2Session) => {
    while (performance.now() < stopAt && !session.destroyed) await one(session);
  };
  await Promise.all(sessions.flatMap((s) => Array.from({ length: options.streams }, () => loop(s))));
  for (const s of sessions) s.close();
  const result = summarize(
    "node:http2 client",
    latencies.subarray(0, count),
    succeeded,
    options.durationS,
    `grpc-status 0 with a full response body: ${succeeded}/${count}${failed ? ` (${failed} failed)` : ""}`,
  );
  return result;
}

export interface GrpcAnswer {
  httpStatus: number;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  message: Buffer | undefined; // the response message without its 5-byte frame header
}

/** One unary gRPC call, reading the status from trailers (or a trailers-only answer). */
export async function grpcCall(url: string, body: Buffer): Promise<GrpcAnswer> {
  const target = new URL(url);
  const session = http2.connect(target.origin);
  try {
    return await new Promise<GrpcAnswer>((resolve, reject) => {
      session.once("error", reject);
      const stream = session.request({ ":method": "POST", ":path": target.pathname, "content-type": "application/grpc", te: "trailers" });
      const chunks: Buffer[] = [];
      let httpStatus = 0;
      let grpcStatus: string | undefined;
      let grpcMessage: string | undefined;
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
        if (h["grpc-message"] !== undefined) grpcMessage = decodeURIComponent(String(h["grpc-message"]));
      };
      stream.on("response", (h) => {
        httpStatus = Number(h[":status"]);
        take(h);
      });
      stream.on("trailers", take);
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.once("error", reject);
      stream.once("close", () => {
        const all = Buffer.concat(chunks);
        const message = all.length >= 5 ? all.subarray(5, 5 + all.readUInt32BE(1)) : undefined;
        resolve({ httpStatus, grpcStatus, grpcMessage, message });
      });
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}
