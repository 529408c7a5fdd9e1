// A TCP proxy in front of a shared backend, so a test can fail the link
// without touching the shared server: stall some connections (bytes stop
// flowing, nothing is closed, as with packets dropped) or reset them.
// Connections are picked by a predicate on what the client sent so far (e.g.
// the one that sent SUBSCRIBE); connections opened while stalled that match
// are stalled too. It can also refuse new connections (a backend that is down).
import net from "node:net";

export interface TcpProxy {
  port: number;
  /** Stops forwarding, both ways, on every connection (present and future) whose client bytes match. */
  stall(match: (clientBytes: string) => boolean): void;
  /** Forwards again, including whatever was held back. */
  resume(): void;
  /** Resets (destroys) every connection whose client bytes match. */
  reset(match: (clientBytes: string) => boolean): void;
  /** While true, every new connection is reset as soon as it is accepted (a backend that is down). */
  refuse(refusing: boolean): void;
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** What the client sent so far (latin1), capped. */
  sent: string;
  held: Array<{ to: net.Socket; chunk: Buffer }>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const links = new Set<Link>();
  let stalled: ((clientBytes: string) => boolean) | undefined;
  let refusing = false;
  const isStalled = (link: Link) => stalled?.(link.sent);

  function forward(link: Link, to: net.Socket, chunk: Buffer) {
    if (isStalled(link) || link.held.length > 0) link.held.push({ to, chunk });
    else to.write(chunk);
  }

  const server = net.createServer((client) => {
    if (refusing) return void client.resetAndDestroy();
    const upstream = net.connect(target.port, target.host);
    const link: Link = { client, upstream, sent: "", held: [] };
    links.add(link);
    client.on("data", (chunk: Buffer) => {
      if (link.sent.length < 64 * 1024) link.sent += chunk.toString("latin1");
      forward(link, upstream, chunk);
    });
    upstream.on("data", (chunk: Buffer) => forward(link, client, chunk));
    const drop = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", drop).on("error", drop);
    upstream.on("close", drop).on("error", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    stall(match) {
      stalled = match;
    },
    resume() {
      stalled = undefined;
      for (const link of links) {
        for (const { to, chunk } of link.held.splice(0)) to.write(chunk);
      }
    },
    reset(match) {
      for (const link of links) {
        if (!match(link.sent)) continue;
        link.client.resetAndDestroy();
        link.upstream.destroy();
      }
    },
    refuse(on) {
      refusing = on;
    },
    async close() {
      stalled = undefined;
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
