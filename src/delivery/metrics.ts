// Delivery on /metrics: the outbox's depth and every attempt's outcome. The
// runtime creates them; the HTTP server registers them in its registry.
import { Counter, Gauge, type Metric } from "prom-client";
import type { DeliveryOutcome } from "./outbox-worker.ts";
export interface DeliveryMetrics {
  /** Counts one delivery attempt (the outbox worker's onAttempt). */
  attempt(outcome: DeliveryOutcome): void;
  /** Registered by the HTTP server into its registry. */
  metrics: Metric[];
}

/**
 * identity_outbox_messages{status="pending"|"failed"}: the queue's depth, read
 * from the outbox on each scrape (every instance reports the same, shared queue);
 * identity_delivery_failures_total{kind,class}: failed attempts, permanent or
 * transient; identity_delivery_given_up_total{kind,class}: messages failed for
 * good; identity_delivery_sent_total{kind}.
 */
export function createDeliveryMetrics(
  depth: () => Promise<{ pending: number; failed: number }>,
  onError: (error: unknown) => void = () => {},
): DeliveryMetrics {
  const queue = new Gauge({
    name: "identity_outbox_messages",
    help: "Messages in the outbox waiting to be sent (pending) or given up on (failed)",
    labelNames: ["status"],
    registers: [],
    async collect() {
      try {
        const counts = await depth();
        this.set({ status: "pending" }, counts.pending);
        this.set({ status: "failed" }, counts.failed);
      } catch (error) {
        onError(error); // the database is down: the last values stay, the rest of /metrics still answers
      }
    },
  });
  const failures = new Counter({
    name: "identity_delivery_failures_total",
    help: "Failed delivery attempts, by message kind and class (permanent, transient)",
    labelNames: ["kind", "class"],
    registers: [],
  });
  const givenUp = new Counter({
    name: "identity_delivery_given_up_total",
    help: "Messages given up on (status failed), by message kind and the class of the last failure",
    labelNames: ["kind", "class"],
    registers: [],
  });
  const sent = new Counter({ name: "identity_delivery_sent_total", help: "Messages sent, by kind", labelNames: ["kind"], registers: [] });
  return {
    attempt(outcome) {
      if (outcome.result === "sent") {
        sent.inc({ kind: outcome.kind });
        return;
      }
      failures.inc({ kind: outcome.kind, class: outcome.failure.class });
      if (outcome.result === "failed") givenUp.inc({ kind: outcome.kind, class: outcome.failure.class });
    },
    metrics: [queue, failures, givenUp, sent],
  };
}
