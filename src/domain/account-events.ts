// The events of a change to an account's role, state or subscription
// (AccountWriter.updateAccount): one per thing that really changes, so a retry
// that changes nothing emits none. Apart from ./events.ts, whose types the ports import.
import { roleName } from "./authorization.ts";
import { accountEvent, type DomainEvent, EventType } from "./events.ts";
import type { AccountUpdate, StoredAccount } from "./ports/accounts.ts";
import type { Random } from "./ports/random.ts";
import { AccountState, SUBSCRIPTION_STATUS_NAMES } from "./types.ts";

/** The events of a change to an account (AccountWriter.updateAccount): one per thing that really changes (a retry that changes nothing emits none). */
export function accountChangeEvents(current: StoredAccount, update: AccountUpdate, at: number, random?: Random): DomainEvent[] {
  const events: DomainEvent[] = [];
  if (update.role !== undefined && update.role !== current.role)
    events.push(accountEvent(EventType.ACCOUNT_ROLE_CHANGED, current, at, { role: roleName(update.role), previous_role: roleName(current.role) }, random));
  if (update.state !== undefined && update.state !== current.state) {
    const type = update.state === AccountState.DEACTIVATED ? EventType.ACCOUNT_DEACTIVATED : EventType.ACCOUNT_ACTIVATED;
    events.push(accountEvent(type, current, at, {}, random));
  }
  if (
    (update.plan !== undefined && update.plan !== current.plan) ||
    (update.planStatus !== undefined && update.planStatus !== current.planStatus) ||
    (update.planExpiresAt !== undefined && update.planExpiresAt !== current.planExpiresAt)
  ) {
    const expiresAt = update.planExpiresAt !== undefined ? update.planExpiresAt : current.planExpiresAt;
    const status = update.planStatus ?? current.planStatus;
    events.push(
      accountEvent(
        EventType.ACCOUNT_SUBSCRIPTION_CHANGED,
        current,
        at,
        {
          plan: update.plan ?? current.plan,
          status: SUBSCRIPTION_STATUS_NAMES[status] ?? "none",
          expire_time: expiresAt === null ? null : new Date(expiresAt).toISOString(),
        },
        random,
      ),
    );
  }
  return events;
}
