// The HTTP call of a blocking hook (src/domain/hooks.ts): one POST, bounded in
// time, no redirects, the answer's body read up to 16 KB.
import type { HookCaller } from "../domain/ports/hooks.ts";

const BODY_MAX = 16 * 1024;

export function createHookCaller(): HookCaller {
  return {
    async post({ url, headers, body, timeoutMs }) {
      const signal = AbortSignal.timeout(timeoutMs);
      const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body, redirect: "manual", signal });
      const text = (await response.text()).slice(0, BODY_MAX);
      return { status: response.status, body: text };
    },
  };
}
