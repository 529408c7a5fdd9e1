// Delivery metrics (src/delivery/metrics.ts) as /metrics shows them: the queue's
// depth read at each scrape, failures by kind and class, give-ups and sends.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createDeliveryMetrics } from "../../src/delivery/metrics.ts";

async function scrape(
  depth: () => Promise<{ pending: number; failed: number }>,
  record: (m: ReturnType<typeof createDeliveryMetrics>) => void,
  onError?: (e: unknown) => void,
) {
  const metrics = createDeliveryMetrics(depth, onError);
  const registry = new Registry();
  for (const metric of metrics.metrics) registry.registerMetric(metric);
  record(metrics);
  return { text: await registry.metrics(), registry };
}

describe("delivery metrics", () => {
  it("count failures by kind and class, give-ups and sends, and read the depth at each scrape", async () => {
    let depth = { pending: 7, failed: 2 };
    const { text, registry } = await scrape(
      async () => depth,
      (m) => {
        m.attempt({ kind: "verify_email", channel: "email", result: "retry", failure: { class: "transient", code: "ESOCKET" } });
        m.attempt({ kind: "verify_email", channel: "email", result: "retry", failure: { class: "transient", code: "ESOCKET" } });
        m.attempt({ kind: "password_reset", channel: "email", result: "failed", failure: { class: "permanent", code: "EENVELOPE", responseCode: 550 } });
        m.attempt({ kind: "verify_email", channel: "email", result: "sent" });
        m.attempt({ kind: "phone_code", channel: "sms", result: "retry", failure: { class: "transient", code: "TWILIO", responseCode: 503 } });
        m.attempt({
          kind: "phone_code",
          channel: "sms",
          result: "failed",
          failure: { class: "permanent", code: "TWILIO", responseCode: 400, providerCode: "21211" },
        });
        m.attempt({ kind: "phone_code", channel: "sms", result: "sent" });
      },
    );
    expect(text).toContain('identity_outbox_messages{status="pending"} 7');
    expect(text).toContain('identity_outbox_messages{status="failed"} 2');
    expect(text).toContain('identity_delivery_failures_total{kind="verify_email",channel="email",class="transient"} 2');
    expect(text).toContain('identity_delivery_failures_total{kind="password_reset",channel="email",class="permanent"} 1');
    expect(text).toContain('identity_delivery_given_up_total{kind="password_reset",channel="email",class="permanent"} 1');
    expect(text).not.toContain('identity_delivery_given_up_total{kind="verify_email"');
    expect(text).toContain('identity_delivery_sent_total{kind="verify_email",channel="email"} 1');
    expect(text).toContain('identity_delivery_failures_total{kind="phone_code",channel="sms",class="transient"} 1');
    expect(text).toContain('identity_delivery_failures_total{kind="phone_code",channel="sms",class="permanent"} 1');
    expect(text).toContain('identity_delivery_given_up_total{kind="phone_code",channel="sms",class="permanent"} 1');
    expect(text).toContain('identity_delivery_sent_total{kind="phone_code",channel="sms"} 1');
    depth = { pending: 0, failed: 3 };
    expect(await registry.metrics()).toContain('identity_outbox_messages{status="failed"} 3');
  });

  it("a database down at scrape time leaves the other metrics answering", async () => {
    const errors: unknown[] = [];
    const { text } = await scrape(
      async () => Promise.reject(new Error("ECONNREFUSED")),
      (m) => m.attempt({ kind: "invitation", channel: "email", result: "sent" }),
      (e) => errors.push(e),
    );
    expect(text).toContain('identity_delivery_sent_total{kind="invitation",channel="email"} 1');
    expect(errors).toHaveLength(1);
  });
});
