// The EphemeralStores contract on a real Redis Cluster of three masters
// (test/support/redis-cluster.ts, started once for this file), then what only
// a cluster can get wrong: scripts and multi-key commands on keys of other
// nodes sent together, keys really spread over the masters, pub/sub between
// nodes, the subscriber moving when its node drops it, and a cluster that is
// unreachable or lost answering Unavailable in bounded time.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeEphemeralStores } from "./ephemeral-stores.contract.ts";
import { redisPrefix } from "../support/backends.ts";
import { CLUSTER_AVAILABLE, startRedisCluster, type ClusterNode, type RedisCluster } from "../support/redis-cluster.ts";
import { BACKEND_UNAVAILABLE } from "../../src/domain/ports/errors.ts";
import type { Invalidation } from "../../src/domain/ports/invalidation.ts";
import type { EphemeralStores } from "../../src/domain/ports/stores.ts";
import { AssuranceLevel, Role, type SessionRecord } from "../../src/domain/types.ts";
import { createRedisStores } from "../../src/store/redis/stores.ts";

const unavailable = { kind: "unavailable", reason: BACKEND_UNAVAILABLE };

describe.skipIf(!CLUSTER_AVAILABLE)("Redis Cluster", () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const open = (now: () => number, keyPrefix: string, bounds: { commandTimeoutMs?: number } = {}) =>
    createRedisStores({ clusterNodes: cluster.nodes }, { now, keyPrefix, ...bounds });

  /** Runs `use` on a plain connection to each node (not cluster-aware), in node order. */
  async function onEachNode<T>(use: (redis: Redis, node: ClusterNode) => Promise<T>): Promise<T[]> {
    return Promise.all(
      cluster.nodes.map(async (node) => {
        const redis = cluster.connect(node);
        try {
          return await use(redis, node);
        } finally {
          redis.disconnect();
        }
      }),
    );
  }

  /** How many keys under `prefix` each node holds. */
  const keysPerNode = (prefix: string) => onEachNode(async (redis) => (await redis.keys(`${prefix}*`)).length);

  /** The node the bus's subscriber is connected to (each node counts only its own clients' subscriptions). */
  async function subscriberNode(channel: string): Promise<number> {
    const counts = await onEachNode(async (redis) => Number(((await redis.pubsub("NUMSUB", channel)) as [string, number])[1]));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
    return counts.indexOf(1);
  }

  describeEphemeralStores("redis cluster", async (now) => {
    const keyPrefix = redisPrefix();
    const instances: EphemeralStores[] = [open(now, keyPrefix)];
    return {
      stores: instances[0]!,
      async openPeer() {
        const peer = open(now, keyPrefix);
        instances.push(peer);
        return peer;
      },
      async close() {
        await Promise.all(instances.map((s) => s.close()));
      },
    };
  });

  const session = (accountId: string): SessionRecord => ({
    sessionId: randomUUID(),
    accountId,
    tenantId: "tenant-1",
    role: Role.USER,
    assurance: AssuranceLevel.AAL1,
    methods: [],
    createdAt: Date.now(),
    lastSeenAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    absoluteExpiresAt: Date.now() + 3_600_000,
    client: "",
  });

  it("scripts and multi-key commands of many accounts sent at once, on every master, each on its own slot", async () => {
    const keyPrefix = redisPrefix();
    const stores = open(Date.now, keyPrefix);
    try {
      const accounts = Array.from({ length: 24 }, () => randomUUID());
      // All in one tick: ioredis would batch them, and a batch must never mix nodes.
      await Promise.all(accounts.flatMap((a) => [stores.sessions.create(`${a}-1`, session(a), 60_000), stores.sessions.create(`${a}-2`, session(a), 60_000)]));
      const perNode = await keysPerNode(keyPrefix);
      expect(perNode.every((n) => n > 0)).toBe(true); // the data really is spread over the three masters
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(accounts.length * 3); // two sessions and an index each

      const listed = await Promise.all(accounts.map((a) => stores.sessions.listForAccount(a)));
      expect(listed.map((l) => l.map((s) => s.tokenHash).sort())).toEqual(accounts.map((a) => [`${a}-1`, `${a}-2`]));
      const touched = await Promise.all(accounts.map((a) => stores.sessions.touch(a, `${a}-1`, session(a), 60_000)));
      expect(touched).toEqual(accounts.map(() => true));
      const ended = await Promise.all(accounts.map((a) => stores.sessions.deleteAllForAccount(a, `${a}-2`)));
      expect(ended).toEqual(accounts.map((a) => [`${a}-1`]));
      expect(await Promise.all(accounts.map((a) => stores.sessions.delete(a, `${a}-2`)))).toEqual(accounts.map(() => true));

      const counters = [1, 60].map((minutes) => ({ field: "ip:192.0.2.1", limit: 1, windowMs: minutes * 60_000 }));
      const hits = await Promise.all(accounts.map((a) => stores.rateLimiter.hit(`t1:sign_in:${a}`, counters)));
      expect(hits.flat().every((r) => r.allowed)).toBe(true);
      await Promise.all(accounts.map((a) => stores.rateLimiter.reset(`t1:sign_in:${a}`, [60_000, 3_600_000])));

      const leases = await Promise.all(accounts.map((a) => stores.leases.acquire(`job-${a}`, 60_000)));
      expect(await Promise.all(leases.map((l) => l!.extend(60_000)))).toEqual(accounts.map(() => true));
      expect(await Promise.all(leases.map((l) => l!.release()))).toEqual(accounts.map(() => true));
      expect((await keysPerNode(keyPrefix)).reduce((a, b) => a + b, 0)).toBe(0);
    } finally {
      await stores.close();
    }
  });

  it("a message published on any node reaches a subscriber connected to another", async () => {
    const keyPrefix = redisPrefix();
    const stores = open(Date.now, keyPrefix);
    try {
      const heard: Invalidation[][] = [];
      await stores.invalidation.subscribe({ invalidate: (m) => heard.push([...m]), subscribed: () => {} });
      const channel = `${keyPrefix}sessions:invalidated`;
      await subscriberNode(channel); // connected to exactly one node
      // Straight to each node, not through the cluster client: two of them are not the subscriber's.
      await onEachNode((redis, node) => redis.publish(channel, JSON.stringify([{ kind: "tenant", tenantId: `via-${node.port}` }])));
      await expect.poll(() => heard.length).toBe(3);
      expect(heard.map((m) => (m[0] as { tenantId: string }).tenantId).sort()).toEqual(cluster.nodes.map((n) => `via-${n.port}`).sort());
    } finally {
      await stores.close();
    }
  });

  it("a subscriber dropped by its node is reported down, moves to another node and hears again", async () => {
    const keyPrefix = redisPrefix();
    const stores = open(Date.now, keyPrefix);
    const publisher = open(Date.now, keyPrefix);
    try {
      const heard: Invalidation[][] = [];
      const states: boolean[] = [];
      await stores.invalidation.subscribe({ invalidate: (m) => heard.push([...m]), subscribed: (up) => states.push(up) });
      const channel = `${keyPrefix}sessions:invalidated`;
      const before = await subscriberNode(channel);
      const node = cluster.connect(cluster.nodes[before]!);
      try {
        expect(await node.client("KILL", "TYPE", "pubsub")).toBeGreaterThanOrEqual(1);
      } finally {
        node.disconnect();
      }
      await expect.poll(() => states, { timeout: 5000 }).toEqual([false, true]);
      expect(await subscriberNode(channel)).not.toBe(before);
      await publisher.invalidation.publish([{ kind: "tenant", tenantId: "after" }]);
      await expect.poll(() => heard.some((m) => m[0]?.kind === "tenant" && m[0].tenantId === "after")).toBe(true);
    } finally {
      await Promise.all([stores.close(), publisher.close()]);
    }
  });

  it("a cluster nobody answers for: not ready, and calls answer Unavailable at once (not after the connect timeout each)", async () => {
    const stores = createRedisStores({ clusterNodes: [{ host: "127.0.0.1", port: 9 }] }, { now: Date.now, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
    try {
      expect(await stores.ping()).toBe(false);
      const calls = [
        () => stores.sessions.get("a", "b"),
        () => stores.sessions.create("h", session("a"), 1000),
        () => stores.rateLimiter.hit("g", [{ field: "", limit: 1, windowMs: 1000 }]),
        () => stores.invalidation.publish([{ kind: "all" }]),
      ];
      for (const call of calls) {
        const started = Date.now();
        await expect(call()).rejects.toMatchObject(unavailable);
        expect(Date.now() - started).toBeLessThan(500);
      }
    } finally {
      await stores.close();
    }
  });

  it("every master paused: calls answer Unavailable within the command timeout, and work again after", async () => {
    const stores = open(Date.now, redisPrefix(), { commandTimeoutMs: 300 });
    try {
      await stores.sessions.create("h", session("a"), 60_000);
      await onEachNode((redis) => redis.client("PAUSE", 1500, "ALL"));
      const started = Date.now();
      await expect(stores.sessions.get("a", "h")).rejects.toMatchObject(unavailable);
      await expect(stores.sessions.create("h2", session("b"), 60_000)).rejects.toMatchObject(unavailable);
      expect(Date.now() - started).toBeLessThan(1500);
      await sleep(1600);
      await expect.poll(() => stores.ping(), { timeout: 5000 }).toBe(true);
      expect((await stores.sessions.get("a", "h"))?.accountId).toBe("a");
    } finally {
      await stores.close();
    }
  });

  // Last: it ends the file's cluster.
  it("every node lost after start: not ready, and calls answer Unavailable at once instead of waiting for the cluster", async () => {
    const stores = open(Date.now, redisPrefix(), { commandTimeoutMs: 500 });
    try {
      await stores.sessions.create("h", session("a"), 60_000);
      await cluster.stop();
      await sleep(300); // the cluster client notices
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await expect(stores.sessions.get("a", "h")).rejects.toMatchObject(unavailable);
        await expect(stores.sessions.deleteAllForAccount("a")).rejects.toMatchObject(unavailable);
        await expect(stores.rateLimiter.hit("g", [{ field: "", limit: 1, windowMs: 1000 }])).rejects.toMatchObject(unavailable);
        expect(Date.now() - started).toBeLessThan(2000);
        expect(await stores.ping()).toBe(false);
        await sleep(1000);
      }
    } finally {
      await stores.close();
    }
  });
});
