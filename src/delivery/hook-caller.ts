// The HTTP call of a blocking hook (src/domain/hooks.ts): one POST, bounded in
// time, no redirects, the answer's body read up to 16 KB, refused when the host
// is on a private network unless allowed (./guarded-http.ts).
import type { HookCaller } from "../domain/ports/hooks.ts";
import type { GuardedPost } from "./guarded-http.ts";

export function createHookCaller(post: GuardedPost): HookCaller {
  return {
    post: ({ url, headers, body, timeoutMs }) => post({ url, headers, body, timeoutMs }),
  };
}
