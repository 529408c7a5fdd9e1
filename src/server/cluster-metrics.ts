// /metrics under node:cluster. The workers share the port, so a scrape lands on
// any one of them; that worker asks the primary, which gathers every worker's
// registry (prom-client's AggregatorRegistry, over the cluster's IPC channel)
// and answers with the sum. Counters then only go up, whoever is asked.
import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";

const REQUEST = "identity:metrics-request";
const RESPONSE = "identity:metrics-response";
/** prom-client gives up on a silent worker after 5 s; wait a little longer for its answer. */
const SCRAPE_TIMEOUT_MS = 6000;

interface MetricsMessage {
  type: string;
  id: number;
  body?: string;
  error?: string;
}

/** Primary: answers the workers' scrape requests with every worker's metrics, summed. */
export function aggregateWorkerMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on("message", (worker, message: MetricsMessage) => {
    if (message?.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (body) => worker.isConnected() && worker.send({ type: RESPONSE, id: message.id, body }),
      (error: Error) => worker.isConnected() && worker.send({ type: RESPONSE, id: message.id, error: error.message }),
    );
  });
}

/**
 * Worker: offers `registry` to the primary's aggregation, and returns the
 * scrape function /metrics calls: the whole cluster's metrics, from the primary.
 */
export function scrapeThroughPrimary(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // prom-client installs a worker's answering listener only when an AggregatorRegistry is made.
  new AggregatorRegistry();
  let next = 0;
  const pending = new Map<number, { resolve: (body: string) => void; reject: (error: Error) => void }>();
  process.on("message", (message: MetricsMessage) => {
    if (message?.type !== RESPONSE) return;
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) waiter?.reject(new Error(message.error));
    else waiter?.resolve(message.body ?? "");
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("the primary did not answer the metrics request"));
      }, SCRAPE_TIMEOUT_MS);
      pending.set(id, {
        resolve: (body) => (clearTimeout(timer), resolve(body)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      process.send!({ type: REQUEST, id });
    });
}
