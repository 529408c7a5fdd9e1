// No timing oracle: StartPasswordReset and ResendVerification must not answer
// measurably slower for a known address than for an unknown one (issue 9: a
// token write and an outbox insert made the known path ~3 ms slower, which 50
// samples detect). Measured over interleaved pairs (load slows both sides of a
// pair alike), after a warm-up, with a Mann-Whitney U test — and the medians
// must differ by a visible amount too, so scheduling noise on a loaded machine
// cannot fail it by significance alone.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IdentityService } from "../../gen/identity/v1/identity_service_pb.js";
import { BACKENDS } from "../support/backends.ts";
import { startTestServer, type TestServer } from "../support/server.ts";
import { mannWhitneyU, median } from "../support/statistics.ts";

const PASSWORD = "correct horse battery staple";
const SAMPLES = 60;
const WARM_UP = 8;
let seq = 0;
const uniqueEmail = (tag: string) => `oracle.${tag}.${Date.now()}.${seq++}@example.test`;

describe.each(BACKENDS)("timing of address flows on the %s backend", (backend) => {
  let server: TestServer;
  let identity: ReturnType<typeof createClient<typeof IdentityService>>;
  /** Known (unverified, so both flows apply) addresses, one per sample: no address's message budget runs out. */
  const known: string[] = [];
  let ipSeq = 0;
  // Each call from its own client IP (through the trusted proxy): no source's budget runs out either.
  const nextIp = () => `10.${(ipSeq >> 16) & 255}.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

  beforeAll(async () => {
    server = await startTestServer(backend, { env: { TRUSTED_PROXIES: "1" } });
    identity = createClient(IdentityService, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    for (let i = 0; i < SAMPLES + WARM_UP; i++) {
      const email = uniqueEmail("known");
      await identity.signUp({ email, password: PASSWORD }, { headers: { "x-forwarded-for": nextIp() } });
      known.push(email);
    }
  }, 120_000);

  afterAll(async () => {
    await server?.close();
  });

  async function compare(call: (email: string, ip: string) => Promise<unknown>) {
    const time = async (email: string) => {
      const started = performance.now();
      await call(email, nextIp());
      return performance.now() - started;
    };
    for (let i = 0; i < WARM_UP; i++) {
      await time(known[SAMPLES + i]!);
      await time(uniqueEmail("unknown"));
    }
    const knownTimes: number[] = [];
    const unknownTimes: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      // Alternate which goes first, so neither side always follows the other's work (the outbox worker's, say).
      if (i % 2 === 0) {
        knownTimes.push(await time(known[i]!));
        unknownTimes.push(await time(uniqueEmail("unknown")));
      } else {
        unknownTimes.push(await time(uniqueEmail("unknown")));
        knownTimes.push(await time(known[i]!));
      }
    }
    const { p } = mannWhitneyU(knownTimes, unknownTimes);
    const [k, u] = [median(knownTimes), median(unknownTimes)];
    return { p, known: k, unknown: u, summary: `known median ${k.toFixed(3)} ms, unknown median ${u.toFixed(3)} ms, Mann-Whitney p=${p.toExponential(2)}` };
  }

  /** Fails only when the difference is both significant and large enough to matter (≥ 0.3 ms and ≥ 10% of the faster median). */
  function expectNoOracle(result: Awaited<ReturnType<typeof compare>>) {
    const gap = Math.abs(result.known - result.unknown);
    const oracle = result.p < 0.001 && gap >= 0.3 && gap >= 0.1 * Math.min(result.known, result.unknown);
    expect(oracle, result.summary).toBe(false);
  }

  it("StartPasswordReset answers a known address as fast as an unknown one", async () => {
    expectNoOracle(await compare((email, ip) => identity.startPasswordReset({ email }, { headers: { "x-forwarded-for": ip } })));
  }, 120_000);

  it("ResendVerification answers a known address as fast as an unknown one", async () => {
    expectNoOracle(await compare((email, ip) => identity.resendVerification({ email }, { headers: { "x-forwarded-for": ip } })));
  }, 120_000);
});
