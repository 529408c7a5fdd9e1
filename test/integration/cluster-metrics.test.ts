// /metrics under node:cluster: whichever worker takes the scrape's connection,
// the answer is the sum over every worker, so counters only ever go up and
// equal the calls made (issue 14). The real entry point with WORKERS=2.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createMysqlDatabase, REDIS_URL, redisPrefix } from "../support/backends.ts";
import { base64Key, freePort, ready, request, startMain, waitFor, type MainProcess } from "../support/main-process.ts";

const PROCEDURE = "grpc.health.v1.Health/Check";

/** The sum of identity_rpc_calls_total over every code for one procedure. */
function calls(metrics: string, procedure: string): number {
  let total = 0;
  for (const line of metrics.split("\n")) {
    if (line.startsWith("identity_rpc_calls_total{") && line.includes(`procedure="${procedure}"`)) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

describe.runIf(BACKENDS.includes("mysql"))("metrics across cluster workers", () => {
  let service: MainProcess;
  let port: number;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const database = await createMysqlDatabase();
    drop = database.drop;
    service = startMain({
      MYSQL_URL: database.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: redisPrefix(),
      KEY_ENCRYPTION_KEYS: base64Key(),
      BLIND_INDEX_KEY: base64Key(),
      DEVELOPMENT_MODE: "true",
      WORKERS: "2",
      PORT: String(await freePort()),
    });
    port = await service.listening();
    // Both workers listen before the test starts, or one would take every connection.
    await waitFor("two workers listening", () => (service.output().match(/"msg":"listening"/g)?.length ?? 0) === 2);
    await ready(port);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await drop?.();
  });

  it("every scrape, over a fresh connection, counts every worker's calls", async () => {
    const seen: number[] = [];
    let made = 0;
    for (let round = 0; round < 6; round++) {
      // Fresh connections: the cluster spreads them over both workers.
      for (let i = 0; i <= round; i++) {
        const res = await request(port, "POST", `/${PROCEDURE}`, "{}", { "content-type": "application/json" });
        expect(res.status).toBe(200);
        made++;
      }
      const scrape = await request(port, "GET", "/metrics");
      expect(scrape.status, service.output().slice(-2000)).toBe(200);
      seen.push(calls(scrape.body, PROCEDURE));
      expect(seen.at(-1)).toBe(made);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
    // Both workers answered calls: the total is not one worker's count.
    const scrape = await request(port, "GET", "/metrics");
    expect(scrape.body).toMatch(/identity_rpc_calls_total\{[^}]*procedure="grpc\.health\.v1\.Health\/Check"/);
  }, 60_000);
});
