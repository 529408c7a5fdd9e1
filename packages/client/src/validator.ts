// A session validator for Node services: answers from a bounded cache in the
// calling process, and learns of revocations from SessionService/WatchRevocations
// as they happen, so a revoked session is refused here within the stream's delay
// (typically milliseconds). While the stream is down, what is cached is trusted
// only for a short TTL and every other check calls ValidateSession. The stream
// reconnects by itself (backoff up to 5 s); the cache is emptied on every
// (re)connect, since revocations may have been missed meanwhile.
import { createHash, createHmac } from "node:crypto";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client, createClient, createContextKey, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { AssuranceLevel, AuthenticationMethod, Role } from "../gen/identity/v1/common_pb.js";
import { SessionService, type ValidateSessionResponse, type WatchRevocationsResponse } from "../gen/identity/v1/session_service_pb.js";
import { bearerInterceptor } from "./clients.ts";

export interface ValidatedSession {
  accountId: string;
  tenantId: string;
  role: Role;
  assuranceLevel: AssuranceLevel;
  /** When the session expires unless refreshed (ms since the epoch). */
  expiresAt: number;
  sessionId: string;
  /** The proofs the session was opened with, in order (password, email_link, …). */
  authenticationMethods: AuthenticationMethod[];
}

export interface SessionValidatorOptions {
  /** The identity service (e.g. "http://identity:8080"). */
  baseUrl: string;
  /** An API key of your tenant holding sessions.validate. */
  apiKey: string;
  /** "grpc" (default, HTTP/2) or "connect". */
  protocol?: "grpc" | "connect";
  /** Connect only: "2" (default) or "1.1". */
  httpVersion?: "1.1" | "2";
  /** Most sessions kept (default 10,000; the least recently added goes first). */
  maxEntries?: number;
  /** Longest a session is answered from the cache while the stream is live (default 60 s). */
  maxAgeMs?: number;
  /** While the stream is down: longest a cached answer is still trusted before asking ValidateSession (default 2 s). */
  fallbackTtlMs?: number;
  /** Longest wait between reconnection attempts (default 5 s; it starts at 100 ms and doubles). */
  maxReconnectDelayMs?: number;
  /** Told when the stream goes live or down. */
  onStateChange?: (state: ValidatorState) => void;
  /** Told of every revocation event received (for metrics: the time it arrived). */
  onRevocation?: (kind: "sessions" | "account" | "tenant" | "reset") => void;
}

export type ValidatorState = "connecting" | "live" | "down";

export interface SessionValidator {
  /**
   * The session behind `token`, from the cache when it may answer, else from
   * ValidateSession. Rejects with the service's ConnectError: Unauthenticated
   * (reason SESSION_INVALID) for an unknown, expired or revoked session;
   * Unavailable when the service cannot be reached and nothing cached may answer.
   */
  validate(token: string): Promise<ValidatedSession>;
  /** Whether the revocation stream is live now. */
  readonly state: ValidatorState;
  /** Resolves true once the stream is live (at once if it is), false after `timeoutMs` (default 10 s). Validation works either way. */
  live(timeoutMs?: number): Promise<boolean>;
  /** Sessions held. */
  readonly size: number;
  /** Stops the stream and empties the cache. */
  close(): void;
}

interface Entry {
  session: ValidatedSession;
  cachedAt: number;
  tokenHash: string;
  accountDigest: string;
}

interface Stream {
  tenantId: string;
  digestKey: Uint8Array;
}

const MIN_RECONNECT_DELAY_MS = 100;
/** Until the first message (ready) the stream waits this long before trying again. */
const CONNECT_TIMEOUT_MS = 10_000;

export function createSessionValidator(options: SessionValidatorOptions): SessionValidator {
  const maxEntries = options.maxEntries ?? 10_000;
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const fallbackTtlMs = options.fallbackTtlMs ?? 2_000;
  const maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5_000;
  const interceptors = [bearerInterceptor(options.apiKey)];
  // The stream has a connection of its own: a call's trouble never cuts it, nor the reverse.
  const transport = (): Transport =>
    options.protocol === "connect"
      ? createConnectTransport({ baseUrl: options.baseUrl, httpVersion: options.httpVersion ?? "2", useBinaryFormat: true, interceptors })
      : createGrpcTransport({ baseUrl: options.baseUrl, interceptors });
  const calls: Client<typeof SessionService> = createClient(SessionService, transport());
  const watcher: Client<typeof SessionService> = createClient(SessionService, transport());

  const byToken = new Map<string, Entry>();
  const byHash = new Map<string, string>();
  const byAccount = new Map<string, Set<string>>();
  const inflight = new Map<string, Promise<ValidatedSession>>();
  // Bumped by every event: a ValidateSession answer that raced one is not cached.
  let epoch = 0;
  let state: ValidatorState = "connecting";
  let stream: Stream | undefined;
  // The last stream's tenant and key: answers got while the stream is down are cached (for fallbackTtlMs) under them.
  let lastStream: Stream | undefined;
  let closed = false;
  let current: AbortController | undefined;

  function remove(token: string) {
    const entry = byToken.get(token);
    if (!entry) return;
    byToken.delete(token);
    byHash.delete(entry.tokenHash);
    const tokens = byAccount.get(entry.accountDigest);
    tokens?.delete(token);
    if (tokens?.size === 0) byAccount.delete(entry.accountDigest);
  }

  function clear() {
    epoch++;
    byToken.clear();
    byHash.clear();
    byAccount.clear();
  }

  const waiting = new Set<() => void>();

  function setState(next: ValidatorState) {
    if (next === state) return;
    state = next;
    if (next === "live") for (const wake of waiting) wake();
    options.onStateChange?.(next);
  }

  const digest = (key: Uint8Array, accountId: string) => createHmac("sha256", key).update(accountId, "utf8").digest("hex");

  function store(token: string, session: ValidatedSession, at: number) {
    const key = stream ?? lastStream;
    // Only the key's tenant: its invalidations are the ones the stream carries.
    if (at !== epoch || key === undefined || session.tenantId !== key.tenantId) return;
    remove(token);
    if (byToken.size >= maxEntries) {
      const oldest = byToken.keys().next();
      if (!oldest.done) remove(oldest.value);
    }
    const entry: Entry = {
      session,
      cachedAt: Date.now(),
      tokenHash: createHash("sha256").update(token, "utf8").digest("hex"),
      accountDigest: digest(key.digestKey, session.accountId),
    };
    byToken.set(token, entry);
    byHash.set(entry.tokenHash, token);
    let tokens = byAccount.get(entry.accountDigest);
    if (!tokens) byAccount.set(entry.accountDigest, (tokens = new Set()));
    tokens.add(token);
  }

  function fromResponse(response: ValidateSessionResponse): ValidatedSession {
    return {
      accountId: response.accountId,
      tenantId: response.tenantId,
      role: response.role,
      assuranceLevel: response.assuranceLevel,
      expiresAt: response.expireTime ? timestampMs(response.expireTime) : 0,
      sessionId: response.sessionId,
      authenticationMethods: response.authenticationMethods,
    };
  }

  function ask(token: string): Promise<ValidatedSession> {
    const pending = inflight.get(token);
    if (pending) return pending;
    const at = epoch;
    const asked = calls
      .validateSession({ sessionToken: token })
      .then((response) => {
        const session = fromResponse(response);
        store(token, session, at);
        return session;
      })
      .finally(() => inflight.delete(token));
    inflight.set(token, asked);
    return asked;
  }

  function apply(event: WatchRevocationsResponse["event"]) {
    switch (event.case) {
      case "sessionsEnded":
        epoch++;
        for (const hash of event.value.tokenHashes) {
          const token = byHash.get(hash);
          if (token !== undefined) remove(token);
        }
        options.onRevocation?.("sessions");
        return;
      case "accountInvalidated": {
        epoch++;
        for (const token of [...(byAccount.get(event.value.accountDigest) ?? [])]) remove(token);
        options.onRevocation?.("account");
        return;
      }
      case "tenantInvalidated":
        clear();
        options.onRevocation?.("tenant");
        return;
      case "reset":
        clear();
        options.onRevocation?.("reset");
        return;
      default:
        return;
    }
  }

  async function watch() {
    let delay = MIN_RECONNECT_DELAY_MS;
    while (!closed) {
      const abort = new AbortController();
      current = abort;
      let timer: NodeJS.Timeout | undefined;
      const silence = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => abort.abort(), ms);
      };
      silence(CONNECT_TIMEOUT_MS);
      let heartbeatMs = CONNECT_TIMEOUT_MS / 3;
      try {
        for await (const message of watcher.watchRevocations({}, { signal: abort.signal })) {
          silence(3 * heartbeatMs);
          const event = message.event;
          if (event.case === "ready") {
            heartbeatMs = event.value.heartbeatIntervalMs > 0 ? event.value.heartbeatIntervalMs : heartbeatMs;
            silence(3 * heartbeatMs);
            // Whatever was cached before may have missed a revocation.
            clear();
            stream = { tenantId: event.value.tenantId, digestKey: event.value.accountDigestKey };
            lastStream = stream;
            delay = MIN_RECONNECT_DELAY_MS;
            setState("live");
          } else if (stream !== undefined) apply(event);
        }
      } catch {
        // Down: told below; the error itself (network, Unavailable, a revoked key) changes nothing but the wait.
      } finally {
        clearTimeout(timer);
      }
      // From now on events may be missed: answers already cached count for fallbackTtlMs only.
      stream = undefined;
      epoch++;
      if (closed) break;
      setState("down");
      await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random() / 2)).unref());
      delay = Math.min(delay * 2, maxReconnectDelayMs);
    }
  }
  void watch();

  return {
    validate(token) {
      if (closed) return Promise.reject(new ConnectError("the validator is closed", Code.Canceled));
      const entry = byToken.get(token);
      if (entry !== undefined) {
        const now = Date.now();
        const trusted = now - entry.cachedAt < (stream !== undefined ? maxAgeMs : fallbackTtlMs);
        if (trusted && entry.session.expiresAt > now) return Promise.resolve(entry.session);
        remove(token);
      }
      return ask(token);
    },
    get state() {
      return state;
    },
    live(timeoutMs = 10_000) {
      if (state === "live") return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (result: boolean) => {
          waiting.delete(wake);
          clearTimeout(timer);
          resolve(result);
        };
        const wake = () => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        waiting.add(wake);
      });
    },
    get size() {
      return byToken.size;
    },
    close() {
      closed = true;
      current?.abort();
      clear();
    },
  };
}

/** Where sessionInterceptor puts the caller's session: `ctx.values.get(validatedSessionKey)` in a handler. */
export const validatedSessionKey = createContextKey<ValidatedSession | undefined>(undefined, { description: "the caller's validated session" });

/**
 * A connect interceptor for your own connect-node server: validates the
 * `authorization: Bearer <session token>` of every call with `validator` and
 * puts the session under validatedSessionKey. No token → Unauthenticated;
 * a refused one → the service's error (Unauthenticated SESSION_INVALID).
 * `optional` lets calls without a token through (the key then holds undefined).
 */
export function sessionInterceptor(validator: Pick<SessionValidator, "validate">, options: { optional?: boolean } = {}): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization");
    const match = header === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1] === undefined) {
      if (header !== null) throw new ConnectError("authorization must be 'Bearer <session token>'", Code.Unauthenticated);
      if (!options.optional) throw new ConnectError("a session token is required (authorization: Bearer <token>)", Code.Unauthenticated);
    } else {
      req.contextValues.set(validatedSessionKey, await validator.validate(match[1]));
    }
    return next(req);
  };
}
