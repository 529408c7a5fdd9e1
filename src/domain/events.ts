// Domain events: what happened to an account, named by ids and kinds only —
// never an address, a name or a token. A change writes its events in its own
// transaction (the ports take `events` beside the rows they write), so an event
// exists exactly when its change committed. The event dispatcher
// (src/domain/event-dispatch.ts) then numbers them and fans them out to
// webhooks; the pull stream (AdminService/StreamEvents) reads them by number.
//
// Adding a kind is one line in EventType (and one `domainEvent(...)` where the
// change is written); subscribers name kinds by these strings.
import { newId } from "./ids.ts";
import type { Random } from "./ports/random.ts";

export const EventType = {
  ACCOUNT_CREATED: "account.created",
  ACCOUNT_VERIFIED: "account.verified",
  ACCOUNT_UPDATED: "account.updated",
  ACCOUNT_ACTIVATED: "account.activated",
  ACCOUNT_DEACTIVATED: "account.deactivated",
  /** The account was erased: its id is all that is left (pseudonymous). */
  ACCOUNT_DELETED: "account.deleted",
  ACCOUNT_ROLE_CHANGED: "account.role_changed",
  ACCOUNT_SUBSCRIPTION_CHANGED: "account.subscription_changed",
  IDENTITY_ADDED: "identity.added",
  IDENTITY_REMOVED: "identity.removed",
  IDENTITY_VERIFIED: "identity.verified",
  SESSION_CREATED: "session.created",
  SESSION_REVOKED: "session.revoked",
  PASSWORD_CHANGED: "password.changed",
  PASSWORD_RESET: "password.reset",
  CONSENT_CHANGED: "consent.changed",
  /** A second factor was confirmed (data: factor_id, kind). */
  SECOND_FACTOR_ENROLLED: "second_factor.enrolled",
  /** A second factor was removed (data: factor_id). */
  SECOND_FACTOR_REMOVED: "second_factor.removed",
  /** The account's recovery codes were replaced by new ones. */
  RECOVERY_CODES_REGENERATED: "recovery_codes.regenerated",
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** Every kind a webhook or a stream may name. */
export const EVENT_TYPES: readonly string[] = Object.values(EventType);

/** Values an event's data may hold: ids, kinds, numbers, flags — never personal data. */
export type EventData = Record<string, string | number | boolean | null>;

export interface DomainEvent {
  /** Time-ordered; also the webhook-id of every delivery of it (receivers deduplicate by it). */
  id: string;
  tenantId: string;
  /** The account it is about; null for none. */
  accountId: string | null;
  type: EventType;
  /** More ids and kinds (identity_id, session_id, role, …); account_id and tenant_id are added on delivery. */
  data: EventData;
  createdAt: number;
}

/** An event as numbered by the dispatcher (its position in the stream). */
export interface SequencedEvent extends DomainEvent {
  sequence: number;
}

let lastId = "";

/**
 * A time-ordered id greater than every one made before in this process (a
 * monotonic UUIDv7: RFC 9562 §6.2): events made in one change, in the same
 * millisecond, keep the order they were made in, which is their order in the stream.
 */
function nextEventId(at: number, random?: Random): string {
  let id = newId(at, random);
  if (id <= lastId) {
    const hex = (BigInt(`0x${lastId.replaceAll("-", "")}`) + 1n).toString(16).padStart(32, "0");
    id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  lastId = id;
  return id;
}

/** Makes an event of `type` about `accountId` at `at`. */
export function domainEvent(
  type: EventType,
  about: { tenantId: string; accountId: string | null; at: number; random?: Random },
  data: EventData = {},
): DomainEvent {
  return { id: nextEventId(about.at, about.random), tenantId: about.tenantId, accountId: about.accountId, type, data, createdAt: about.at };
}

/** The JSON body of a delivery (Standard Webhooks): `{ type, timestamp, data: { account_id, tenant_id, … } }`. */
export function eventBody(event: DomainEvent): string {
  return JSON.stringify({
    type: event.type,
    timestamp: new Date(event.createdAt).toISOString(),
    data: { ...event.data, account_id: event.accountId, tenant_id: event.tenantId },
  });
}

const IDENTITY_KIND_NAMES: Record<number, string> = { 1: "email", 2: "phone", 3: "guest", 4: "oidc" };

/** How events name an identity's kind ("email", "phone", …). */
export function identityKindName(kind: number): string {
  return IDENTITY_KIND_NAMES[kind] ?? "unknown";
}

/** An event about an account (`{ tenantId, id }` of an Account or StoredAccount). */
export function accountEvent(type: EventType, account: { tenantId: string; id: string }, at: number, data: EventData = {}, random?: Random): DomainEvent {
  return domainEvent(type, { tenantId: account.tenantId, accountId: account.id, at, ...(random ? { random } : {}) }, data);
}
