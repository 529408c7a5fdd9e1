// SessionService/WatchRevocations: the revocation feed of this instance
// (src/domain/revocation-feed.ts) as a server stream, for the published client's
// session validator (packages/client/src/validator.ts).
import { createHmac, randomBytes } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { WatchRevocationsResponseSchema, type WatchRevocationsResponse } from "../../gen/identity/v1/session_service_pb.js";
import { hashSecret } from "../crypto/keyring.ts";
import { assertMayValidate } from "../domain/authorization.ts";
import { DomainError, permissionDenied, unauthenticated } from "../domain/errors.ts";
import type { RevocationEvent, RevocationFeed } from "../domain/revocation-feed.ts";
import { bearerToken, requirePrincipal } from "./call-context.ts";

/** How often a stream says it is alive; validators give up after three silent intervals. */
export const HEARTBEAT_INTERVAL_MS = 5000;
/** Events held for a stream that is not read: past it they are replaced by one reset. */
const MAX_QUEUED = 10_000;
/** Streams one API key may hold open on one instance. */
const MAX_STREAMS_PER_KEY = 64;

const openPerKey = new Map<string, number>();

export async function* watchRevocations(feed: RevocationFeed, ctx: HandlerContext): AsyncGenerator<WatchRevocationsResponse> {
  const principal = requirePrincipal(ctx);
  if (principal.kind !== "api_key") throw permissionDenied("API_KEY_REQUIRED", "WatchRevocations needs an API key with sessions.validate, not a session");
  assertMayValidate(principal, principal.tenantId);
  const open = openPerKey.get(principal.apiKeyId) ?? 0;
  if (open >= MAX_STREAMS_PER_KEY)
    throw new DomainError("resource_exhausted", "TOO_MANY_STREAMS", `an API key may hold at most ${MAX_STREAMS_PER_KEY} revocation streams per instance`, {
      retryAfterMs: 5000,
    });
  // requirePrincipal found an API key, so the header holds one.
  const secretHash = hashSecret(bearerToken(ctx.requestHeader) ?? "");
  const digestKey = randomBytes(32);
  const digest = (accountId: string) => createHmac("sha256", digestKey).update(accountId, "utf8").digest("hex");

  const queue: WatchRevocationsResponse[] = [];
  let failure: DomainError | undefined;
  let wake: (() => void) | undefined;
  const push = (event: MessageInitShape<typeof WatchRevocationsResponseSchema>["event"]) => {
    if (queue.length >= MAX_QUEUED) queue.splice(0, queue.length, create(WatchRevocationsResponseSchema, { event: { case: "reset", value: {} } }));
    else queue.push(create(WatchRevocationsResponseSchema, { event }));
    wake?.();
  };
  const fail = (error: DomainError) => {
    failure ??= error;
    wake?.();
  };

  function translate(event: RevocationEvent) {
    switch (event.kind) {
      case "sessions":
        if (event.tokenHashes.length > 0) push({ case: "sessionsEnded", value: { tokenHashes: [...event.tokenHashes] } });
        return;
      case "account":
        return push({ case: "accountInvalidated", value: { accountDigest: digest(event.accountId) } });
      case "tenant":
        if (event.tenantId === principal.tenantId) push({ case: "tenantInvalidated", value: { tenantId: event.tenantId } });
        return;
      case "apiKey":
        if (event.secretHash === secretHash) fail(unauthenticated("API_KEY_INVALID", "the API key was revoked"));
        return;
      case "reset":
        return push({ case: "reset", value: {} });
    }
  }

  const stop = feed.watch({
    event: translate,
    down: () => fail(new DomainError("unavailable", "REVOCATIONS_UNAVAILABLE", "revocations cannot be received now; reconnect", { retryAfterMs: 1000 })),
  });
  openPerKey.set(principal.apiKeyId, open + 1);
  const heartbeat = setInterval(() => push({ case: "heartbeat", value: {} }), HEARTBEAT_INTERVAL_MS);
  const onAbort = () => wake?.();
  ctx.signal.addEventListener("abort", onAbort);
  try {
    yield create(WatchRevocationsResponseSchema, {
      event: { case: "ready", value: { tenantId: principal.tenantId, accountDigestKey: digestKey, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS } },
    });
    for (;;) {
      while (queue.length > 0 && failure === undefined) yield queue.shift()!;
      if (failure) throw failure;
      if (ctx.signal.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    stop();
    clearInterval(heartbeat);
    ctx.signal.removeEventListener("abort", onAbort);
    const left = (openPerKey.get(principal.apiKeyId) ?? 1) - 1;
    if (left > 0) openPerKey.set(principal.apiKeyId, left);
    else openPerKey.delete(principal.apiKeyId);
  }
}
