// Entry point. Sizes the libuv threadpool before anything can use it (argon2
// hashes run there), then loads the service. Every worker process has its own
// pool: together they get about two threads per core, so hashing can use every
// core without one process's pool growing with the machine.
import { availableParallelism } from "node:os";
import { ConfigError, loadConfig } from "./config.ts";

try {
  const { workers } = loadConfig();
  process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, Math.ceil((2 * availableParallelism()) / workers)));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error; // reported by start() with the variable's name
}
const { start } = await import("./server/start.ts");
await start();
