// Readiness: is every required backend answering? Each check is bounded, so
// /readyz and gRPC health answer within a second even when a backend drops
// packets, and each backend's state change (down, back) is logged once.
import type { Logger } from "./logger.ts";

export interface Backend {
  /** For the log: "mysql", "redis". */
  name: string;
  /** The variable that names it, so the operator knows what to look at. */
  variable: string;
  ping(): Promise<boolean>;
}

export interface Readiness {
  /** True when every backend answered within the bound; concurrent callers share one check. */
  ready(): Promise<boolean>;
  /** Checks every `intervalMs` in the background, so state changes are logged without probes. */
  watch(intervalMs?: number): void;
  close(): void;
}

/** Bound on one check: well inside the one second a probe may take. */
export const READY_TIMEOUT_MS = 500;

export function createReadiness(backends: readonly Backend[], log: Logger, timeoutMs = READY_TIMEOUT_MS): Readiness {
  // undefined until first checked: a backend that is up at start is not "back".
  const up = new Map<string, boolean>();
  let inFlight: Promise<boolean> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const bounded = (backend: Backend): Promise<boolean> =>
    new Promise((resolve) => {
      const timeout = setTimeout(() => resolve(false), timeoutMs);
      backend
        .ping()
        .then(
          (ok) => resolve(ok),
          () => resolve(false),
        )
        .finally(() => clearTimeout(timeout));
    });

  const record = (backend: Backend, ok: boolean) => {
    const before = up.get(backend.name);
    up.set(backend.name, ok);
    if (ok === before || (ok && before === undefined)) return;
    if (ok) log.info({ backend: backend.name }, `${backend.name} (${backend.variable}) answers again: ready`);
    else
      log.warn(
        { backend: backend.name },
        `${backend.name} (${backend.variable}) does not answer within ${timeoutMs} ms: not ready, calls that need it answer Unavailable until it is back`,
      );
  };

  const check = async (): Promise<boolean> => {
    const results = await Promise.all(
      backends.map(async (backend) => {
        const ok = await bounded(backend);
        record(backend, ok);
        return ok;
      }),
    );
    return results.every(Boolean);
  };

  return {
    ready() {
      inFlight ??= check().finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    },
    watch(intervalMs = 1000) {
      if (timer) return;
      void this.ready();
      timer = setInterval(() => void this.ready(), intervalMs);
      timer.unref();
    },
    close() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
