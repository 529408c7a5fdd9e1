// A TCP proxy a test controls, put in front of a shared backend (MariaDB, Redis)
// to fail it without touching the server everyone uses:
// - "forward": passes bytes both ways;
// - "stall": accepts connections and forwards nothing, on new and existing
//   connections alike — a backend whose packets are dropped (not refused);
//   bytes held meanwhile are delivered when forwarding resumes, as TCP would;
// - "refuse": closes every connection at once (a backend that is down).
import net, { type Socket } from "node:net";

export type ProxyMode = "forward" | "stall" | "refuse";

export interface TcpProxy {
  port: number;
  /** 127.0.0.1:<port>, for rewriting a backend URL. */
  host: string;
  mode(mode: ProxyMode): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

export async function startTcpProxy(target: { host: string; port: number }, initial: ProxyMode = "forward"): Promise<TcpProxy> {
  let current = initial;
  const pairs = new Set<Pair>();

  const connectUpstream = (pair: Pair) => {
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on("error", () => pair.client.destroy());
    pair.client.on("error", () => upstream.destroy());
    upstream.on("close", () => pair.client.destroy());
    pair.client.on("close", () => upstream.destroy());
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
  };

  const apply = (pair: Pair) => {
    if (current === "refuse") {
      pair.client.destroy();
      pair.upstream?.destroy();
    } else if (current === "stall") {
      // Stop reading both sides: nothing moves, nothing is lost, nothing is refused.
      pair.client.pause();
      pair.upstream?.pause();
    } else {
      if (!pair.upstream) connectUpstream(pair);
      pair.client.resume();
      pair.upstream?.resume();
    }
  };

  const server = net.createServer((client) => {
    const pair: Pair = { client, upstream: undefined };
    pairs.add(pair);
    client.on("close", () => pairs.delete(pair));
    client.on("error", () => {});
    if (current === "stall") client.pause();
    else apply(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    mode(mode) {
      current = mode;
      for (const pair of pairs) apply(pair);
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its host and port replaced by the proxy's. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const rewritten = new URL(url);
  rewritten.hostname = "127.0.0.1";
  rewritten.port = String(proxy.port);
  return rewritten.toString();
}
