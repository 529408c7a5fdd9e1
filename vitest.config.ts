import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start real servers and hash passwords with argon2: keep the 2-core machine unsaturated.
    maxWorkers: 2,
    pool: "forks",
  },
});
