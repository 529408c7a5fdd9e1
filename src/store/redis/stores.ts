// Ephemeral stores on Redis, one server or a Redis Cluster. Keys carry {hash
// tags}, and every script and multi-key command touches keys of one tag, so of
// one slot: one account's sessions (revocation is one script), one rate-limit
// group's windows (a check's tiers are one script), one lease, one token.
import { randomUUID } from "node:crypto";
import { Cluster, Redis, type RedisOptions } from "ioredis";
import type { Invalidation, InvalidationBus, InvalidationSubscriber } from "../../domain/ports/invalidation.ts";
import type { Leases } from "../../domain/ports/leases.ts";
import type { RateCounter, RateLimiter } from "../../domain/ports/limits.ts";
import type { SessionStore } from "../../domain/ports/sessions.ts";
import type { EphemeralStores } from "../../domain/ports/stores.ts";
import type { TokenStore } from "../../domain/ports/tokens.ts";
import type { CodeStore, PendingCode } from "../../domain/ports/codes.ts";
import type { OneTimeToken, SessionRecord } from "../../domain/types.ts";
import { translatingErrors } from "../translate-errors.ts";
import { translateRedisError } from "./errors.ts";

/** Builds every key; `prefix` lets several deployments (or test runs) share one Redis. */
function keys(prefix: string) {
  return {
    session: (accountId: string, tokenHash: string) => `${prefix}sess:{${accountId}}:${tokenHash}`,
    sessionPrefix: (accountId: string) => `${prefix}sess:{${accountId}}:`,
    sessionIndex: (accountId: string) => `${prefix}sess:{${accountId}}`,
    token: (tokenHash: string) => `${prefix}tok:{${tokenHash}}`,
    code: (key: string) => `${prefix}code:{${key}}`,
    /** One hash per group and window, a field per counter: the group is the hash tag, so a group's windows share a slot. */
    counters: (group: string, windowMs: number, window: number) => `${prefix}rl:{${group}}:${windowMs}:${window}`,
    lease: (name: string) => `${prefix}lease:{${name}}`,
    invalidationChannel: `${prefix}sessions:invalidated`,
  };
}
type Keys = ReturnType<typeof keys>;
/** The commands the stores send: the same on one server and on a cluster (where ioredis routes each by its first key). */
type Client = Redis | Cluster;

// KEYS: session, index. ARGV: json, ttlMs, tokenHash.
const CREATE_SESSION = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], '1')
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`;

// KEYS: code. ARGV: codeHash, maxAttempts. A hash: c (the code as JSON), h (its hash), n (failed attempts).
const ATTEMPT_CODE = `
local pending = redis.call('HMGET', KEYS[1], 'c', 'h', 'n')
if not pending[1] then return {'none'} end
if pending[2] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'match', pending[1]}
end
local failed = redis.call('HINCRBY', KEYS[1], 'n', 1)
local left = tonumber(ARGV[2]) - failed
if left <= 0 then redis.call('DEL', KEYS[1]) end
return {'mismatch', tostring(math.max(left, 0))}`;

// KEYS: session, index. ARGV: tokenHash.
const DELETE_SESSION = `
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])`;

// KEYS: session, index. ARGV: json, ttlMs. SET XX: only a session that still exists is refreshed.
const TOUCH_SESSION = `
if not redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PX', ARGV[2]) then return 0 end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`;

// KEYS: index. ARGV: session key prefix, hash to keep ('' for none). The session
// keys it builds carry the index's hash tag (the account), so they live on its slot.
const DELETE_ALL_SESSIONS = `
local ended = {}
for _, h in ipairs(redis.call('HKEYS', KEYS[1])) do
  if h ~= ARGV[2] then
    if redis.call('DEL', ARGV[1] .. h) == 1 then table.insert(ended, h) end
    redis.call('HDEL', KEYS[1], h)
  end
end
return ended`;

// KEYS: one hash per window. ARGV: each key's ttlMs, then (key index, field) per counter.
const COUNT_ATTEMPTS = `
local counts = {}
for i = #KEYS + 1, #ARGV, 2 do
  counts[#counts + 1] = redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], 1)
end
for i = 1, #KEYS do
  if redis.call('PTTL', KEYS[i]) == -1 then redis.call('PEXPIRE', KEYS[i], ARGV[i]) end
end
return counts`;

// KEYS: one hash per window. ARGV: (key index, field) per counter. Never below 0,
// and never creates a key (an expired window has nothing to take back, and a key made here would have no TTL).
const REFUND_ATTEMPTS = `
for i = 1, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  if tonumber(redis.call('HGET', key, ARGV[i + 1]) or '0') > 0 then redis.call('HINCRBY', key, ARGV[i + 1], -1) end
end
return 0`;

/** Known authentication methods stored as small numbers (a session stays under 512 bytes); others as their name. */
const METHOD_CODES: Readonly<Record<string, number>> = { password: 1, email_link: 2, phone_code: 3, guest: 4, totp: 5, recovery_code: 6 };
const METHOD_NAMES = Object.fromEntries(Object.entries(METHOD_CODES).map(([name, code]) => [code, name])) as Record<number, string>;

/**
 * A session as stored: an array, not an object (no field names; the account id
 * is in the key), so a session with its sealed client stays under 512 bytes.
 * Authentication methods are [code or name, identity id, ms after creation].
 */
export function encodeSession(session: SessionRecord): string {
  const { sessionId, tenantId, role, assurance, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, client, methods } = session;
  const compact = methods.map((m) => [METHOD_CODES[m.method] ?? m.method, m.identityId, m.at - createdAt]);
  return JSON.stringify([1, sessionId, tenantId, role, assurance, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, client, compact]);
}

export function decodeSession(accountId: string, raw: string): SessionRecord {
  const parsed = JSON.parse(raw) as unknown;
  if (!Array.isArray(parsed)) {
    // Written before sessions were stored as arrays: its client is dropped (it was in clear).
    const { userAgent: _ua, ip: _ip, ...rest } = parsed as SessionRecord & { userAgent?: string; ip?: string };
    return { ...rest, client: rest.client ?? "", methods: rest.methods ?? [] };
  }
  const [, sessionId, tenantId, role, assurance, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, client, compact] = parsed as [
    number,
    string,
    string,
    SessionRecord["role"],
    SessionRecord["assurance"],
    number,
    number,
    number,
    number,
    string,
    Array<[number | string, string, number]> | undefined,
  ];
  // Written before methods were recorded: none.
  const methods = (compact ?? []).map(([m, identityId, after]) => ({
    method: typeof m === "number" ? (METHOD_NAMES[m] ?? String(m)) : m,
    identityId,
    at: createdAt + after,
  }));
  return { sessionId, accountId, tenantId, role, assurance, createdAt, lastSeenAt, expiresAt, absoluteExpiresAt, client, methods };
}

function sessionStore(redis: Client, k: Keys): SessionStore {
  return {
    async create(tokenHash, session, ttlMs) {
      await redis.eval(
        CREATE_SESSION,
        2,
        k.session(session.accountId, tokenHash),
        k.sessionIndex(session.accountId),
        encodeSession(session),
        Math.max(1, Math.ceil(ttlMs)),
        tokenHash,
      );
    },
    async get(accountId, tokenHash) {
      const raw = await redis.get(k.session(accountId, tokenHash));
      return raw === null ? undefined : decodeSession(accountId, raw);
    },
    async delete(accountId, tokenHash) {
      return (await redis.eval(DELETE_SESSION, 2, k.session(accountId, tokenHash), k.sessionIndex(accountId), tokenHash)) === 1;
    },
    async touch(accountId, tokenHash, session, ttlMs) {
      return (
        (await redis.eval(
          TOUCH_SESSION,
          2,
          k.session(accountId, tokenHash),
          k.sessionIndex(accountId),
          encodeSession(session),
          Math.max(1, Math.ceil(ttlMs)),
        )) === 1
      );
    },
    async listForAccount(accountId) {
      const hashes = await redis.hkeys(k.sessionIndex(accountId));
      if (hashes.length === 0) return [];
      const values = await redis.mget(hashes.map((h) => k.session(accountId, h)));
      const live: Array<{ tokenHash: string; session: SessionRecord }> = [];
      const gone: string[] = [];
      hashes.forEach((tokenHash, i) => {
        const raw = values[i];
        if (raw) live.push({ tokenHash, session: decodeSession(accountId, raw) });
        else gone.push(tokenHash);
      });
      if (gone.length > 0) await redis.hdel(k.sessionIndex(accountId), ...gone); // expired ones
      return live;
    },
    async deleteAllForAccount(accountId, keepTokenHash) {
      return (await redis.eval(DELETE_ALL_SESSIONS, 1, k.sessionIndex(accountId), k.sessionPrefix(accountId), keepTokenHash ?? "")) as string[];
    },
  };
}

function tokenStore(redis: Client, k: Keys): TokenStore {
  const key = k.token;
  return {
    async put(tokenHash, token, ttlMs) {
      await redis.set(key(tokenHash), JSON.stringify(token), "PX", Math.max(1, Math.ceil(ttlMs)));
    },
    async take(tokenHash) {
      const raw = await redis.getdel(key(tokenHash));
      return raw === null ? undefined : (JSON.parse(raw) as OneTimeToken);
    },
    async peek(tokenHash) {
      const raw = await redis.get(key(tokenHash));
      return raw === null ? undefined : (JSON.parse(raw) as OneTimeToken);
    },
  };
}

function codeStore(redis: Client, k: Keys): CodeStore {
  return {
    async put(key, code, ttlMs) {
      await redis
        .multi()
        .del(k.code(key))
        .hset(k.code(key), "c", JSON.stringify(code), "h", code.codeHash, "n", "0")
        .pexpire(k.code(key), Math.max(1, Math.ceil(ttlMs)))
        .exec();
    },
    async attempt(key, codeHash, maxAttempts) {
      const [outcome, value] = (await redis.eval(ATTEMPT_CODE, 1, k.code(key), codeHash, maxAttempts)) as [string, string | undefined];
      if (outcome === "match") return { outcome, code: JSON.parse(value!) as PendingCode };
      if (outcome === "mismatch") return { outcome, attemptsLeft: Number(value) };
      return { outcome: "none" };
    },
  };
}

/** Fixed windows numbered from the injected clock, so tests move time instead of sleeping. */
function rateLimiter(redis: Client, k: Keys, now: () => number): RateLimiter {
  /** The window keys of `counters` at `t` (each once), with (key index, field) per counter. */
  const keysOf = (group: string, counters: readonly RateCounter[], t: number) => {
    const windowKeys: string[] = [];
    const ttls: number[] = [];
    const pairs: Array<number | string> = [];
    for (const { field, windowMs } of counters) {
      const key = k.counters(group, windowMs, Math.floor(t / windowMs));
      let index = windowKeys.indexOf(key);
      if (index < 0) {
        index = windowKeys.push(key) - 1;
        ttls.push(remainingMs(t, windowMs));
      }
      pairs.push(index + 1, field);
    }
    return { windowKeys, ttls, pairs };
  };
  return {
    async hit(group, counters, at) {
      const t = at ?? now();
      const { windowKeys, ttls, pairs } = keysOf(group, counters, t);
      const counts = (await redis.eval(COUNT_ATTEMPTS, windowKeys.length, ...windowKeys, ...ttls, ...pairs)) as number[];
      return counters.map(({ limit, windowMs }, i) =>
        Number(counts[i]) <= limit ? { allowed: true, retryAfterMs: 0 } : { allowed: false, retryAfterMs: remainingMs(t, windowMs) },
      );
    },
    async refund(group, counters, at) {
      const { windowKeys, pairs } = keysOf(group, counters, at);
      if (windowKeys.length > 0) await redis.eval(REFUND_ATTEMPTS, windowKeys.length, ...windowKeys, ...pairs);
    },
    async reset(group, windowsMs) {
      const t = now();
      if (windowsMs.length > 0) await redis.del(...windowsMs.map((windowMs) => k.counters(group, windowMs, Math.floor(t / windowMs))));
    },
    now,
  };
}

/** Milliseconds from `t` to the end of its fixed window. */
const remainingMs = (t: number, windowMs: number) => (Math.floor(t / windowMs) + 1) * windowMs - t;

/** How the subscriber connection is watched: a PING every intervalMs, dead when none answers within timeoutMs. */
export interface SubscriberCheck {
  intervalMs: number;
  timeoutMs: number;
}

const DEFAULT_SUBSCRIBER_CHECK: SubscriberCheck = { intervalMs: 1000, timeoutMs: 1000 };

/** The messages of one publication; anything unreadable (another version's format) means "drop everything". */
function parseInvalidations(raw: string): Invalidation[] {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (Array.isArray(parsed) && parsed.every((m) => typeof m === "object" && m !== null && typeof (m as { kind?: unknown }).kind === "string"))
      return parsed as Invalidation[];
  } catch {
    // falls through
  }
  return [{ kind: "all" }];
}

/**
 * Pub/sub on a connection of its own. A subscription can die quietly (a
 * connection held open that no longer delivers), so it is checked by PING:
 * when the connection closes or a PING goes unanswered, subscribers hear
 * subscribed(false) at once (their caches stop answering) and a fresh
 * connection replaces it; its first answered PING (after its SUBSCRIBE, on
 * the same connection) brings subscribed(true).
 */
function invalidationBus(
  redis: Client,
  openSubscriber: () => Redis,
  channel: string,
  check: SubscriberCheck,
): { bus: InvalidationBus; close: () => Promise<void> } {
  const subscribers: InvalidationSubscriber[] = [];
  let current: Redis | undefined;
  let subscribed = false;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;
  let closed = false;
  // Connections whose SUBSCRIBE was answered: only then does an answered PING mean "receiving".
  const confirmed = new WeakSet<Redis>();
  const subscribing = new WeakMap<Redis, Promise<void>>();

  function setSubscribed(next: boolean) {
    if (next === subscribed) return;
    subscribed = next;
    for (const subscriber of subscribers) subscriber.subscribed(next);
  }

  /** A subscriber connection of its own (see SUBSCRIBER_OPTIONS): verify() replaces it, so nothing is resubscribed behind our back. */
  function connect(): Redis {
    const connection = openSubscriber();
    connection.on("error", () => {});
    connection.on("message", (from: string, raw: string) => {
      if (connection !== current || from !== channel) return;
      const messages = parseInvalidations(raw);
      for (const subscriber of subscribers) subscriber.invalidate(messages);
    });
    for (const event of ["close", "end"]) {
      connection.on(event, () => {
        if (connection === current) setSubscribed(false);
      });
    }
    const subscription = connection.subscribe(channel).then(() => {
      confirmed.add(connection);
      void verify();
    });
    subscription.catch(() => {}); // a failure shows as a closed connection or an unanswered PING
    subscribing.set(connection, subscription);
    return connection;
  }

  /** Starts over on a new connection: a stalled one may never close by itself, a closed one is not reopened. */
  function replace(connection: Redis) {
    setSubscribed(false);
    current = connect();
    connection.disconnect();
  }

  /** One PING on the subscriber connection; a dead one is replaced. */
  async function verify() {
    const connection = current;
    if (checking || closed || !connection) return;
    if (connection.status === "end") return replace(connection);
    if (connection.status !== "ready") return setSubscribed(false);
    checking = true;
    let timeout: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      connection.ping().then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => (timeout = setTimeout(() => resolve(false), check.timeoutMs))),
    ]);
    clearTimeout(timeout);
    checking = false;
    if (connection !== current || closed) return;
    if (!answered) return replace(connection);
    if (confirmed.has(connection)) setSubscribed(true);
  }

  return {
    bus: {
      async publish(messages) {
        if (messages.length > 0) await redis.publish(channel, JSON.stringify(messages));
      },
      async subscribe(subscriber) {
        subscribers.push(subscriber);
        if (current) {
          if (!subscribed) subscriber.subscribed(false);
          return;
        }
        current = connect();
        timer = setInterval(() => void verify(), check.intervalMs);
        timer.unref();
        // Redis down at start: the service must still open its port (and report not
        // ready); the queued SUBSCRIBE is made when Redis arrives, and the first
        // answered PING after it says subscribed(true).
        if (await subscribedOrDown(current, subscribing.get(current)!)) subscribed = true;
        else subscriber.subscribed(false);
      },
    },
    close: async () => {
      closed = true;
      clearInterval(timer);
      current?.disconnect();
    },
  };
}

// KEYS: lease. ARGV: owner, ttlMs. Only the owner extends or releases.
const EXTEND_LEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`;
const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

function leases(redis: Client, k: Keys): Leases {
  return {
    async acquire(name, ttlMs) {
      const key = k.lease(name);
      const owner = randomUUID();
      if ((await redis.set(key, owner, "PX", Math.max(1, Math.ceil(ttlMs)), "NX")) !== "OK") return undefined;
      return {
        extend: async (ttl) => (await redis.eval(EXTEND_LEASE, 1, key, owner, Math.max(1, Math.ceil(ttl)))) === 1,
        release: async () => (await redis.eval(RELEASE_LEASE, 1, key, owner)) === 1,
      };
    },
  };
}

/**
 * Resolves once `subscribed` does, or as soon as Redis turns out to be down: a
 * service started while Redis is away must still open its port (and report not
 * ready); the queued subscription is made when Redis arrives.
 */
function subscribedOrDown(connection: Redis, subscribed: Promise<unknown>): Promise<boolean> {
  const outcome = subscribed.then(
    () => true,
    () => false,
  ); // rejected only when the connection is closed for good
  if (connection.status === "ready") return outcome;
  if (connection.status === "reconnecting" || connection.status === "end") return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      connection.off("error", down);
      resolve(ok);
    };
    const down = () => done(false);
    void outcome.then(done);
    connection.once("error", down);
  });
}

export interface RedisBounds {
  /** Bound on opening a connection (the TCP connect). */
  connectTimeoutMs?: number;
  /** Bound on each command, and on a connection that stops answering (it is then dropped and reopened). */
  commandTimeoutMs?: number;
}

/** One Redis server (a redis:// or rediss:// URL), or a Redis Cluster reached through some of its nodes. */
export type RedisTarget = string | { readonly clusterNodes: ReadonlyArray<{ readonly host: string; readonly port: number }> };

/**
 * The subscriber connection: no command timeout on SUBSCRIBE and no retry
 * limit (it fails only with its connection), and never reconnected by ioredis:
 * verify() replaces it until Redis answers, so a subscription is never given
 * up while Redis is away.
 */
const SUBSCRIBER_OPTIONS = { maxRetriesPerRequest: null, commandTimeout: undefined, autoResubscribe: false, retryStrategy: () => null } satisfies RedisOptions;

interface Connected {
  redis: Client;
  openSubscriber: () => Redis;
  /** True when the backend serves commands. */
  serving: () => Promise<boolean>;
  /** Defined while calls must wait for a first connection: resolves when they may go (connected, or waited long enough). */
  firstConnection: () => Promise<void> | undefined;
}

function connectServer(url: string, options: RedisOptions): Connected {
  const redis = new Redis(url, options);
  return {
    redis,
    openSubscriber: () => redis.duplicate(SUBSCRIBER_OPTIONS),
    serving: async () => (await redis.ping()) === "PONG",
    firstConnection: () => undefined,
  };
}

/**
 * A Redis Cluster. Classic pub/sub is forwarded by the cluster bus to every
 * node, so the subscriber is a plain connection to any one node (the next one
 * each time it is replaced, so a dead node is left behind), watched by PING
 * like a single server's.
 *
 * A cluster that is not ready (never reached, or every node lost) refuses
 * calls at once instead of queueing them: ioredis would hold them with no time
 * bound, and run them when it comes back, long after their callers were told
 * Unavailable. Calls made before the first connection wait for it, up to the
 * connect timeout.
 */
function connectCluster(seeds: ReadonlyArray<{ host: string; port: number }>, options: RedisOptions, connectTimeoutMs: number): Connected {
  const { maxRetriesPerRequest, enableAutoPipelining, ...nodeOptions } = options;
  const cluster = new Cluster(
    seeds.map(({ host, port }) => ({ host, port })),
    {
      redisOptions: { ...nodeOptions, maxRetriesPerRequest },
      enableOfflineQueue: false,
      enableAutoPipelining,
      // ioredis groups auto-pipelined commands by the slot of their first
      // argument, which for EVAL is the script: scripts on keys of other nodes
      // would share one pipeline, and fail. They are routed by their keys instead.
      autoPipeliningIgnoredCommands: ["eval", "evalsha"],
      slotsRefreshTimeout: connectTimeoutMs,
    },
  );
  // The first connection settles once: connected, failed (closed), or not within
  // the connect timeout. Only calls made before that wait; later ones go (or fail) at once.
  let settled = false;
  const firstConnection = new Promise<void>((resolve) => {
    const done = () => {
      settled = true;
      clearTimeout(timer);
      for (const event of ["ready", "close", "end"]) cluster.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, connectTimeoutMs);
    timer.unref();
    for (const event of ["ready", "close", "end"]) cluster.once(event, done);
  });
  let next = 0;
  return {
    redis: cluster,
    openSubscriber() {
      const known = cluster.nodes("all").map((node) => ({ host: node.options.host!, port: node.options.port! }));
      const nodes = known.length > 0 ? known : seeds;
      const node = nodes[next++ % nodes.length]!;
      return new Redis({ ...nodeOptions, host: node.host, port: node.port, ...SUBSCRIBER_OPTIONS });
    },
    // Ready means every slot is served: a node that sees the cluster down (a master lost) says so.
    serving: async () => ((await cluster.cluster("INFO")) as string).includes("cluster_state:ok"),
    firstConnection: () => (settled ? undefined : firstConnection),
  };
}

/** Port methods that answer synchronously (the clock): never gated. */
const SYNCHRONOUS_METHODS = new Set(["now"]);

/** The port's calls wait for `gate` while it asks them to (a cluster's first connection). */
function afterGate<T extends object>(port: T, gate: () => Promise<void> | undefined): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(port)) {
    if (typeof value !== "function" || SYNCHRONOUS_METHODS.has(name)) {
      wrapped[name] = value;
      continue;
    }
    const call = (args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(port, args);
    wrapped[name] = (...args: unknown[]) => {
      const waiting = gate();
      return waiting ? waiting.then(() => call(args)) : call(args);
    };
  }
  return wrapped as T;
}

/**
 * `target` a redis:// or rediss:// URL (rediss: TLS verified against the
 * system's CAs), or a cluster's nodes. `tlsCa`: PEM of the CA that signed the
 * servers' certificates — connections then use TLS verified against it,
 * whatever the scheme (the only way to TLS for a cluster).
 */
export function createRedisStores(
  target: RedisTarget,
  options: { now: () => number; keyPrefix?: string; tlsCa?: string | undefined; subscriberCheck?: SubscriberCheck } & RedisBounds,
): EphemeralStores {
  const commandTimeout = options.commandTimeoutMs ?? 2000;
  const connectTimeout = options.connectTimeoutMs ?? 2000;
  const redisOptions: RedisOptions = {
    // A Redis that drops packets fails a call in bounded time: connecting, each
    // command, and a connection that stops answering (socketTimeout drops it).
    connectTimeout,
    commandTimeout,
    socketTimeout: commandTimeout,
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
    ...(options.tlsCa ? { tls: { ca: options.tlsCa } } : {}),
  };
  const connected = typeof target === "string" ? connectServer(target, redisOptions) : connectCluster(target.clusterNodes, redisOptions, connectTimeout);
  const { redis } = connected;
  const k = keys(options.keyPrefix ?? "");
  // ioredis retries connecting by itself; errors surface on commands and through ping().
  redis.on("error", () => {});
  const invalidation = invalidationBus(redis, connected.openSubscriber, k.invalidationChannel, options.subscriberCheck ?? DEFAULT_SUBSCRIBER_CHECK);
  // Every port answers with the domain's errors (src/domain/ports/errors.ts).
  const port = <T extends object>(store: T) => translatingErrors(afterGate(store, connected.firstConnection), translateRedisError);
  const leaseStore = port(leases(redis, k));
  return {
    sessions: port(sessionStore(redis, k)),
    tokens: port(tokenStore(redis, k)),
    codes: port(codeStore(redis, k)),
    rateLimiter: port(rateLimiter(redis, k, options.now)),
    invalidation: port(invalidation.bus),
    leases: {
      acquire: async (name, ttlMs) => {
        const held = await leaseStore.acquire(name, ttlMs);
        return held && translatingErrors(held, translateRedisError);
      },
    },
    async ping() {
      try {
        await connected.firstConnection();
        return await connected.serving();
      } catch {
        return false;
      }
    },
    async close() {
      await invalidation.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
