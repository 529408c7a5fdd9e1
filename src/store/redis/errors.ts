// ioredis errors as the domain's error kinds. ioredis reports a closed
// connection and exhausted retries with plain errors, so their messages are
// matched here, the one place that knows this driver.
import { backendUnavailable } from "../../domain/ports/errors.ts";

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);
// ioredis's own time bounds (connectTimeout, commandTimeout, socketTimeout) included,
// and a Redis Cluster that cannot be reached, is not ready, or has slots nobody
// serves (CLUSTERDOWN, retried by ioredis until its redirections run out).
const CONNECTION_MESSAGES =
  /Connection is closed|max retries per request|Command timed out|Socket timeout|Stream isn't writeable|None of startup nodes is available|Cluster isn't ready|Cluster is ended|Failed to refresh slots cache|Too many Cluster redirections|^CLUSTERDOWN|^TRYAGAIN/i;

/** True when Redis could not be reached, the connection broke, or a command timed out. */
export function isRedisUnavailable(error: unknown): boolean {
  const e = error as { code?: string; name?: string; message?: string } | null;
  if (!e || typeof e !== "object") return false;
  return (e.code !== undefined && CONNECTION_CODES.has(e.code)) || e.name === "MaxRetriesPerRequestError" || CONNECTION_MESSAGES.test(e.message ?? "");
}

/** A Redis driver error as the domain's error kind; anything else unchanged. */
export function translateRedisError(error: unknown): unknown {
  return isRedisUnavailable(error) ? backendUnavailable(error) : error;
}
