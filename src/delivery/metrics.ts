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
 * identity_delivery_failures_total{kind,channel,class}: failed attempts, permanent or
 * transient; identity_delivery_given_up_total{kind,channel,class}: messages failed for
 * good; identity_delivery_sent_total{kind,channel}. channel: "email" or "sms".
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
    help: "Failed delivery attempts, by message kind, channel (email, sms) and class (permanent, transient)",
    labelNames: ["kind", "channel", "class"],
    registers: [],
  });
  const givenUp = new Counter({
    name: "identity_delivery_given_up_total",
    help: "Messages given up on (status failed), by message kind, channel and the class of the last failure",
    labelNames: ["kind", "channel", "class"],
    registers: [],
  });
  const sent = new Counter({
    name: "identity_delivery_sent_total",
    help: "Messages sent, by kind and channel",
    labelNames: ["kind", "channel"],
    registers: [],
  });
  return {
    attempt(outcome) {
      if (outcome.result === "sent") {
        sent.inc({ kind: outcome.kind, channel: outcome.channel });
        return;
      }
      const labels = { kind: outcome.kind, channel: outcome.channel, class: outcome.failure.class };
      failures.inc(labels);
      if (outcome.result === "failed") givenUp.inc(labels);
    },
    metrics: [queue, failures, givenUp, sent],
  };
}
