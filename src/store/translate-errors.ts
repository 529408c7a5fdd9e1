// Adapters answer with the domain's errors (src/domain/ports/errors.ts): each
// wraps the port objects it returns with its driver's translation, so nothing
// above src/store/ ever inspects a driver error.
import { DomainError } from "../domain/errors.ts";

/** Maps a driver error to a domain error; returns anything it does not recognise unchanged. */
export type ErrorTranslation = (error: unknown) => unknown;

/**
 * The port with every method's errors (thrown, or rejected) passed through
 * `translate`. Domain errors — including those thrown by callbacks a method was
 * given — pass unchanged. Sync methods stay sync.
 */
export function translatingErrors<T extends object>(port: T, translate: ErrorTranslation): T {
  const passThrough = (error: unknown) => (error instanceof DomainError ? error : translate(error));
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(port)) {
    if (typeof value !== "function") {
      wrapped[name] = value;
      continue;
    }
    wrapped[name] = (...args: unknown[]) => {
      let result: unknown;
      try {
        result = (value as (...a: unknown[]) => unknown).apply(port, args);
      } catch (error) {
        throw passThrough(error);
      }
      return result instanceof Promise ? result.catch((error: unknown) => Promise.reject(passThrough(error))) : result;
    };
  }
  return wrapped as T;
}
