// The fast test tier: the real services, interceptors and domain, called
// through connect's in-memory router transport (no socket, no HTTP), on the
// embedded backend held in memory (SQLite ":memory:" and the in-process
// ephemeral store), with a cheap password hasher injected in place of argon2.
// A handler rule is tested in milliseconds; the real-server tier
// (test/integration/) keeps the end-to-end proofs over every protocol.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, createRouterTransport, type Client, type Transport } from "@connectrpc/connect";
import { loadConfig } from "../../src/config.ts";
import type { PasswordHasher } from "../../src/crypto/passwords.ts";
import type { OutgoingMail } from "../../src/delivery/types.ts";
import { createMetrics } from "../../src/interceptors/metrics.ts";
import { routerOptions } from "../../src/interceptors/stack.ts";
import { createLogger } from "../../src/server/logger.ts";
import { createRuntime, type Runtime, type RuntimeOptions } from "../../src/server/wiring.ts";
import { registerIdentityServices } from "../../src/services/routes.ts";
import { IN_MEMORY } from "../../src/store/sql/open.ts";

/**
 * A salted HMAC-SHA256 "hash": microseconds instead of argon2's ~25 ms. Only
 * ever injected here (RuntimeOptions.passwords); the production hasher is untouched.
 */
export function cheapPasswordHasher(): PasswordHasher {
  const digest = (salt: string, password: string) => createHmac("sha256", salt).update(password).digest("base64url");
  return {
    async hash(password) {
      const salt = randomBytes(16).toString("base64url");
      return `cheap$${salt}$${digest(salt, password)}`;
    },
    async verify(hash, password) {
      const [scheme, salt, expected] = hash.split("$");
      if (scheme !== "cheap" || !salt || !expected) return false;
      const actual = Buffer.from(digest(salt, password));
      return actual.length === expected.length && timingSafeEqual(actual, Buffer.from(expected));
    },
    needsRehash: () => false,
    async verifyDummy() {},
  };
}

export interface ServiceHarness {
  runtime: Runtime;
  transport: Transport;
  /** A client of `service`, sending `bearer` (a session token or API key) when given. */
  client<S extends DescService>(service: S, bearer?: string, headers?: Record<string, string>): Client<S>;
  /** Runs the outbox once and returns every message sent so far (captured, never sent). */
  sentMail(): Promise<OutgoingMail[]>;
  /** The last message sent to `address`, after running the outbox. */
  lastMailTo(address: string): Promise<OutgoingMail>;
  close(): Promise<void>;
}

export async function createServiceHarness(options: Pick<RuntimeOptions, "wrapEphemeral"> = {}): Promise<ServiceHarness> {
  const config = loadConfig({
    DATA_DIR: IN_MEMORY,
    DEVELOPMENT_MODE: "true", // the embedded backend, with keys given
    LOG_LEVEL: "silent",
    PUBLIC_URL: "https://app.example.test",
    KEY_ENCRYPTION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
    BLIND_INDEX_KEY: randomBytes(32).toString("base64"),
  });
  const log = createLogger("silent");
  const sent: OutgoingMail[] = [];
  const runtime = await createRuntime(config, log, {
    passwords: cheapPasswordHasher(),
    mailTransport: { send: async (mail) => void sent.push(mail), close: async () => {} },
    deliver: false,
    purgeIntervalMs: 0,
    ...options,
  });
  const transport = createRouterTransport((router) => registerIdentityServices(router, runtime.app), {
    router: routerOptions({ app: runtime.app, metrics: createMetrics(), log }),
  });
  const harness: ServiceHarness = {
    runtime,
    transport,
    client(service, bearer, headers = {}) {
      const client = createClient(service, transport);
      const extra = { ...headers, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) };
      // Every call of this client carries the headers: wrap each method.
      return new Proxy(client, {
        get(target, name, receiver) {
          const method = Reflect.get(target, name, receiver) as unknown;
          if (typeof method !== "function") return method;
          return (input: unknown, options: { headers?: Record<string, string> } = {}) =>
            (method as (i: unknown, o: unknown) => unknown).call(target, input, { ...options, headers: { ...extra, ...options.headers } });
        },
      });
    },
    async sentMail() {
      await runtime.outboxWorker.runOnce();
      return sent;
    },
    async lastMailTo(address) {
      const mail = (await harness.sentMail()).filter((m) => m.to === address).at(-1);
      if (!mail) throw new Error(`no mail to ${address}`);
      return mail;
    },
    close: () => runtime.close(),
  };
  return harness;
}
