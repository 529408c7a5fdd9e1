// What each RPC needs before its handler runs. The authentication interceptor
// (src/interceptors/authentication.ts) applies it; each service declares it
// beside its handlers, complete by type, so a new RPC cannot go undeclared.
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";

/**
 * - "anonymous": no authentication (the handler may read the header itself, as SignOut does);
 * - "session": a person's live session (none → unauthenticated SESSION_REQUIRED; an API key → permission_denied SESSION_REQUIRED);
 * - "principal": a session or an API key (none → unauthenticated AUTHENTICATION_REQUIRED); the handler then authorizes.
 */
export type Access = "anonymous" | "session" | "principal";

/** One access for every RPC of a service, or each RPC's own. */
export type AccessPolicy<S extends DescService> = Access | { readonly [K in keyof ServiceImpl<S>]: Access };
