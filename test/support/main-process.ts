// The real entry point (node src/main.ts) as a child process, as an operator
// runs it; plus plain HTTP helpers that open a fresh connection per request, so
// node:cluster hands each one to the next worker.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";

export interface MainProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the port once the service says it listens. */
  listening(withinMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export function base64Key(): string {
  return randomBytes(32).toString("base64");
}

/**
 * Starts `command args` (default: this Node on src/main.ts in the working
 * directory) with exactly `env` plus PATH and HOME.
 */
export function startMain(env: Record<string, string>, options: { command?: string; args?: string[]; cwd?: string; spawn?: SpawnOptions } = {}): MainProcess {
  const child = spawn(options.command ?? process.execPath, options.args ?? ["src/main.ts"], {
    cwd: options.cwd ?? process.cwd(),
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", SHUTDOWN_GRACE_SECONDS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...options.spawn,
  });
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    output: () => text,
    async listening(withinMs = 30_000) {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const match = /identity service listening on http:\/\/[^:]+:(\d+)/.exec(text);
        if (match) return Number(match[1]);
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before listening:\n${text}`);
        if (Date.now() > deadline) throw new Error(`not listening within ${withinMs} ms:\n${text}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port free right now (a cluster's primary prints PORT as given, so 0 will not do). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One HTTP/1.1 request on a connection of its own. */
export function request(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent: false, headers: { connection: "close", ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** Polls /readyz until it answers 200. */
export async function ready(port: number, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const res = await request(port, "GET", "/readyz").catch(() => undefined);
    if (res?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`not ready within ${withinMs} ms (last: ${res?.status} ${res?.body})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls `condition` until it holds. */
export async function waitFor(what: string, condition: () => boolean, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
