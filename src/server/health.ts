// Standard grpc.health.v1.Health for load balancers, Kubernetes gRPC probes
// and grpc-health-probe. One readiness function decides for every service.
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

// Watch has no push source to subscribe to, so it re-asks this often.
const WATCH_POLL_MS = 1000;

export function registerHealth(router: ConnectRouter, isServing: () => Promise<boolean>, serviceNames: string[] = []): void {
  // "" is the whole server, per the health checking protocol.
  const known = new Set(["", ...serviceNames]);

  // A readiness check that throws means we cannot vouch for serving.
  const current = async (): Promise<Status> => ((await isServing().catch(() => false)) ? Status.SERVING : Status.NOT_SERVING);

  router.service(Health, {
    async check(req) {
      // The spec requires NOT_FOUND (not SERVICE_UNKNOWN) from Check.
      if (!known.has(req.service)) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return { status: await current() };
    },
    async list() {
      const status = await current();
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status }])) };
    },
    async *watch(req, ctx) {
      // The spec wants SERVICE_UNKNOWN on the stream (not an error) for unknown
      // names, and the stream kept open; updates are sent only on change.
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const status = known.has(req.service) ? await current() : Status.SERVICE_UNKNOWN;
        if (status !== last) yield { status };
        last = status;
        try {
          await sleep(WATCH_POLL_MS, undefined, { signal: ctx.signal });
        } catch {
          return; // client went away or server shutting down
        }
      }
    },
  });
}
