// Standard Webhooks signatures (https://www.standardwebhooks.com/): a
// `whsec_`-prefixed base64 secret; the signature is base64 HMAC-SHA256, keyed
// with the secret's decoded bytes, of "<webhook-id>.<webhook-timestamp>.<body>",
// sent as `webhook-signature: v1,<signature>`. Webhook deliveries and the
// blocking hooks (src/domain/hooks.ts) both sign this way.
import { createHmac, randomBytes } from "node:crypto";

export const WEBHOOK_SECRET_PREFIX = "whsec_";

/** A new signing secret: `whsec_` and 24 random bytes in base64 (what Standard Webhooks' libraries generate). */
export function newWebhookSecret(): string {
  return `${WEBHOOK_SECRET_PREFIX}${randomBytes(24).toString("base64")}`;
}

/** The headers of one signed request: webhook-id, webhook-timestamp (Unix seconds) and webhook-signature. */
export function signedHeaders(secret: string, id: string, timestampMs: number, body: string): Record<string, string> {
  const timestamp = Math.floor(timestampMs / 1000).toString();
  const key = Buffer.from(secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret, "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` };
}
