// Who is calling: a person through a session, or an internal service through
// an API key. Services authenticate the call once and pass the principal to
// the domain, which decides what it may do.
import type { AssuranceLevel, Role } from "./types.ts";

export const PERMISSIONS = ["sessions.validate", "users.read", "users.write", "audit.read", "subscriptions.write", "events.read"] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface SessionPrincipal {
  kind: "session";
  tenantId: string;
  accountId: string;
  role: Role;
  sessionId: string;
  tokenHash: string;
  assurance: AssuranceLevel;
  /** When the session was created by a sign-in (for "recent sign-in" checks). */
  authenticatedAt: number;
}

export interface ApiKeyPrincipal {
  kind: "api_key";
  tenantId: string;
  apiKeyId: string;
  permissions: readonly Permission[];
}

export type Principal = SessionPrincipal | ApiKeyPrincipal;

/** How the audit trail names an actor: "account:<id>" or "api_key:<id>". */
export function actorOf(principal: Principal | undefined): string {
  if (!principal) return "anonymous";
  return principal.kind === "session" ? accountActor(principal.accountId) : `api_key:${principal.apiKeyId}`;
}

/** How the audit trail names a signed-in account acting: "account:<id>". */
export function accountActor(accountId: string): string {
  return `account:${accountId}`;
}
