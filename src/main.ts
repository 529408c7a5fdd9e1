// Entry point. Sizes the libuv threadpool to the cores before anything can use
// it (argon2 hashes run there), then loads the service.
import { availableParallelism } from "node:os";

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism()));
const { start } = await import("./server/start.ts");
await start();
