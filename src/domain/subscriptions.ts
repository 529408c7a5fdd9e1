// Subscriptions that act on their dates: a tenant's plans (in its settings, so
// every instance caches them with the settings and drops them on change), the
// subscription of each account (plan, status, period end, renews: columns of
// the account row), changes made by admins or a billing system's API key
// (idempotent under the caller's key), trials started at sign-up or
// verification, and one job that downgrades ended trials and non-renewing
// subscriptions to the free plan and sends renewal reminders once per period.
// ValidateSession answers each account's plan from an in-process cache that a
// change drops on every instance (an "account" invalidation, as deactivation
// sends). See docs/subscriptions.md.
import { accountChangeEvents } from "./account-events.ts";
import { createHash } from "node:crypto";
import type { Keyring } from "../crypto/keyring.ts";
import { openAccount, sealMessage } from "./accounts.ts";
import type { AuditLog } from "./audit-log.ts";
import { assertMayManageAccount } from "./authorization.ts";
import { DomainError, invalidArgument, type FieldViolation } from "./errors.ts";
import { isId } from "./ids.ts";
import { createInvalidatedCache, listenForInvalidations } from "./invalidated-cache.ts";
import { MessageKind } from "./messages.ts";
import type { AccountReader, AccountUpdate, AccountWriter, StoredAccount } from "./ports/accounts.ts";
import type { InvalidationBus } from "./ports/invalidation.ts";
import type { Random } from "./ports/random.ts";
import type { TenantReader } from "./ports/tenants.ts";
import type { Principal } from "./principal.ts";
import { forEachTenant, type Tenants } from "./tenants.ts";
import { IdentityKind, SubscriptionStatus, type Account, type Plan, type Tenant, type TenantSettings } from "./types.ts";

const DAY = 86_400_000;
export const PLAN_ID_SHAPE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const ENTITLEMENT_SHAPE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
export const MAX_PLANS = 50;
const MAX_ENTITLEMENTS = 50;
const PLAN_NAME_MAX = 100;
const MAX_RANK = 1_000_000;
const MAX_TRIAL_DAYS = 366;
const IDEMPOTENCY_KEY_MAX = 200;
/** Accounts handled per query of the job; each is its own transaction. */
const JOB_BATCH = 100;

/** Every rule a plan breaks, as field violations under `prefix` (e.g. "plan."). */
export function planViolations(plan: Plan, prefix: string): FieldViolation[] {
  const v: FieldViolation[] = [];
  if (!PLAN_ID_SHAPE.test(plan.id)) v.push({ field: `${prefix}id`, description: "must be 1 to 64 of a-z 0-9 _ . - starting with a letter or digit" });
  const name = plan.name.trim();
  if (name === "" || [...name].length > PLAN_NAME_MAX || /[\p{Cc}\p{Cf}]/u.test(name))
    v.push({ field: `${prefix}name`, description: `must be 1 to ${PLAN_NAME_MAX} visible characters` });
  if (!Number.isInteger(plan.rank) || plan.rank < 0 || plan.rank > MAX_RANK)
    v.push({ field: `${prefix}rank`, description: `must be between 0 and ${MAX_RANK}` });
  if (plan.entitlements.length > MAX_ENTITLEMENTS) v.push({ field: `${prefix}entitlements`, description: `must be at most ${MAX_ENTITLEMENTS}` });
  plan.entitlements.forEach((e, i) => {
    if (!ENTITLEMENT_SHAPE.test(e)) v.push({ field: `${prefix}entitlements[${i}]`, description: "must be 1 to 64 of A-Z a-z 0-9 _ . : -" });
  });
  if (new Set(plan.entitlements).size !== plan.entitlements.length) v.push({ field: `${prefix}entitlements`, description: "must not repeat" });
  if (!Number.isInteger(plan.trialDays) || plan.trialDays < 0 || plan.trialDays > MAX_TRIAL_DAYS)
    v.push({ field: `${prefix}trial_days`, description: `must be between 0 and ${MAX_TRIAL_DAYS}` });
  return v;
}

export const freePlanOf = (settings: Pick<TenantSettings, "plans">): Plan | undefined => settings.plans.find((p) => p.free);

type SubscriptionFields = Pick<StoredAccount, "plan" | "planStatus" | "planExpiresAt" | "planRenews" | "planRemindedFor">;

/**
 * The subscription fields of a new account of the tenant when its trial starts at `when` (undefined otherwise).
 * "upgrade" (a guest becoming a person) is sign-up and verification at once: the trial starts whatever `trial_start` says.
 */
export function trialSubscription(settings: TenantSettings, when: "sign_up" | "verification" | "upgrade", at: number): SubscriptionFields | undefined {
  if (settings.trialPlan === "" || (when !== "upgrade" && settings.trialStart !== when)) return undefined;
  const plan = settings.plans.find((p) => p.id === settings.trialPlan);
  if (!plan || plan.trialDays <= 0) return undefined;
  return { plan: plan.id, planStatus: SubscriptionStatus.TRIALING, planExpiresAt: at + plan.trialDays * DAY, planRenews: false, planRemindedFor: null };
}

/**
 * The one rule for the trial of an account coming to exist, however it does (email, phone, social
 * sign-up, an admin's CreateUser or invitation): with `trial_start` "sign_up" it starts now; with
 * "verification" it starts now only when the account's first identity is created verified (an admin
 * vouching with a password, a provider's sign-in), else at that identity's first proof
 * (startTrialAtVerification). A guest starts none: its trial starts when it is upgraded.
 */
export function trialAtCreation(settings: TenantSettings, identity: { kind: number; verifiedAt: number | null }, at: number): SubscriptionFields | undefined {
  if (identity.kind === IdentityKind.GUEST) return undefined;
  return trialSubscription(settings, identity.verifiedAt === null ? "sign_up" : settings.trialStart, at);
}

/** The subscription fields of a stored account, to refresh an opened one. */
export const subscriptionOf = (stored: StoredAccount): Pick<Account, "plan" | "planStatus" | "planExpiresAt" | "planRenews"> => ({
  plan: stored.plan,
  planStatus: stored.planStatus,
  planExpiresAt: stored.planExpiresAt,
  planRenews: stored.planRenews,
});

/**
 * Starts the tenant's trial for an account at its first proof ("verification") or a guest's upgrade
 * ("upgrade"), if the account never had a subscription: re-checked under the account's lock, so a
 * repeated proof, or a subscription set meanwhile, starts nothing. The account as it stands after.
 */
export async function startTrialAt(
  deps: { accounts: Pick<AccountWriter, "updateAccount">; subscriptionCache: Pick<SubscriptionCache, "changed">; random?: Random },
  settings: TenantSettings,
  account: { tenantId: string; id: string },
  when: "verification" | "upgrade",
  at: number,
): Promise<StoredAccount | undefined> {
  const trial = trialSubscription(settings, when, at);
  if (!trial) return undefined;
  const written = await deps.accounts.updateAccount({
    tenantId: account.tenantId,
    accountId: account.id,
    at,
    change: (current) =>
      current.planStatus === SubscriptionStatus.NONE && current.plan === "" ? { ...trial, events: accountChangeEvents(current, trial, at, deps.random) } : {},
  });
  // A guest's session may have cached its former (none) subscription: dropped everywhere.
  if (written) await deps.subscriptionCache.changed(account.id);
  return written?.account;
}

/** An account's subscription as ValidateSession needs it (one object per change: the fast path compares identity). */
export interface SubscriptionView {
  plan: string;
  status: SubscriptionStatus;
}

/** What ValidateSession answers for a subscription in a tenant: the effective plan and its entitlements. */
export interface PlanAnswer {
  planId: string;
  status: SubscriptionStatus;
  entitlements: readonly string[];
}

const NO_ENTITLEMENTS: readonly string[] = Object.freeze([]);

/** The plan that applies: the subscription's, else the tenant's free plan. */
export function planAnswer(tenant: Tenant, view: SubscriptionView): PlanAnswer {
  const plans = tenant.settings.plans;
  const plan = view.plan === "" ? plans.find((p) => p.free) : plans.find((p) => p.id === view.plan);
  return { planId: plan?.id ?? view.plan, status: view.status, entitlements: plan?.entitlements ?? NO_ENTITLEMENTS };
}

export interface SubscriptionCache {
  /** The account's subscription when this instance holds it (no I/O), else undefined. */
  getCached(accountId: string): SubscriptionView | undefined;
  /** The account's subscription, read and cached on a miss; none (plan "") when the account is gone. */
  get(tenantId: string, accountId: string): Promise<SubscriptionView>;
  /** Drops the account's entry here and on every instance (after a committed change). */
  changed(accountId: string): Promise<void>;
  listen(): Promise<void>;
}

const NONE: SubscriptionView = Object.freeze({ plan: "", status: SubscriptionStatus.NONE });

export function createSubscriptionCache(deps: {
  accounts: Pick<AccountReader, "getAccount">;
  invalidation: InvalidationBus;
  now: () => number;
  maxEntries?: number;
  maxAgeMs?: number;
}): SubscriptionCache {
  // Same bounds as the session cache: a missed invalidation lasts at most maxAgeMs.
  const cache = createInvalidatedCache<SubscriptionView>({ maxEntries: deps.maxEntries ?? 100_000, maxAgeMs: deps.maxAgeMs ?? 30_000 }, deps.now);
  /** Counts account changes (here and announced): a read that overlapped one is not cached. */
  let changes = 0;
  return {
    getCached: (accountId) => cache.get(accountId),
    async get(tenantId, accountId) {
      const epoch = cache.epoch();
      const seen = changes;
      const found = await deps.accounts.getAccount(tenantId, accountId);
      const view = found ? { plan: found.account.plan, status: found.account.planStatus } : NONE;
      // Not cached when any account changed while this read was out: it may predate the change
      // (an answer read before a commit and cached after its invalidation would outlive it).
      // Keyed by account, no group: an account's invalidation deletes the key itself.
      if (seen === changes) cache.set(accountId, view, epoch);
      return view;
    },
    async changed(accountId) {
      changes++;
      cache.delete(accountId);
      await deps.invalidation.publish([{ kind: "account", accountId }]);
    },
    listen: () =>
      listenForInvalidations(deps.invalidation, cache, (message) => {
        if (message.kind !== "account") return;
        changes++;
        cache.delete(message.accountId);
      }),
  };
}

export interface SubscriptionChange {
  principal: Principal;
  tenantId: string;
  accountId: string;
  /** "" clears the subscription. */
  plan: string;
  /** A SubscriptionStatus value; 0: ACTIVE when a plan is set. */
  status: number;
  periodEnd: number | null;
  renews: boolean;
  /** "" for none. */
  idempotencyKey: string;
}

export interface Subscriptions {
  /** The account after the change (or as it stands, with `replayed`, when the key was used before). */
  set(change: SubscriptionChange): Promise<{ account: Account; replayed: boolean }>;
  listPlans(tenantId: string): Promise<Plan[]>;
  setPlan(tenantId: string, plan: Plan): Promise<Plan>;
  deletePlan(tenantId: string, planId: string): Promise<void>;
}

const byRank = (a: Plan, b: Plan) => a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function statusOf(value: number): SubscriptionStatus {
  if ((Object.values(SubscriptionStatus) as number[]).includes(value) && value !== SubscriptionStatus.NONE) return value as SubscriptionStatus;
  throw invalidArgument("subscription.status", "is not a subscription status");
}

export function createSubscriptions(deps: {
  accounts: Pick<AccountWriter, "updateAccount">;
  tenants: Pick<Tenants, "get" | "update">;
  cache: Pick<SubscriptionCache, "changed">;
  keyring: Keyring;
  now: () => number;
}): Subscriptions {
  const notFound = () => new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");
  return {
    async set(input) {
      if (input.accountId === "") throw invalidArgument("account_id", "is required");
      if (!isId(input.accountId)) throw notFound();
      if (input.idempotencyKey.length > IDEMPOTENCY_KEY_MAX) throw invalidArgument("idempotency_key", `must be at most ${IDEMPOTENCY_KEY_MAX} characters`);
      const { settings } = await deps.tenants.get(input.tenantId);
      let update: AccountUpdate;
      if (input.plan === "") {
        if (input.periodEnd !== null) throw invalidArgument("subscription.expire_time", "needs a plan");
        if (input.status !== 0) throw invalidArgument("subscription.status", "needs a plan");
        update = { plan: "", planStatus: SubscriptionStatus.NONE, planExpiresAt: null, planRenews: false, planRemindedFor: null };
      } else {
        if (settings.plans.length > 0 ? !settings.plans.some((p) => p.id === input.plan) : input.plan.length > 64 || input.plan.trim() === "")
          throw invalidArgument("subscription.plan", settings.plans.length > 0 ? "is not one of the tenant's plans" : "must be 1 to 64 characters");
        const status = input.status === 0 ? SubscriptionStatus.ACTIVE : statusOf(input.status);
        if (status === SubscriptionStatus.TRIALING && input.periodEnd === null) throw invalidArgument("subscription.expire_time", "is required for a trial");
        update = { plan: input.plan, planStatus: status, planExpiresAt: input.periodEnd, planRenews: input.renews };
      }
      const onceKey =
        input.idempotencyKey === "" ? undefined : createHash("sha256").update(`subscription\0${input.tenantId}\0${input.idempotencyKey}`).digest("hex");
      const at = deps.now();
      const written = await deps.accounts.updateAccount({
        tenantId: input.tenantId,
        accountId: input.accountId,
        at,
        ...(onceKey !== undefined && { onceKey }),
        change: (current) => {
          assertMayManageAccount(input.principal, current);
          // A new period (or a new end) may earn its own reminder.
          const next = update.planExpiresAt !== undefined && update.planExpiresAt !== current.planExpiresAt ? { ...update, planRemindedFor: null } : update;
          return { ...next, events: accountChangeEvents(current, next, at) };
        },
      });
      if (!written) throw notFound();
      if (!written.replayed) await deps.cache.changed(input.accountId);
      return { account: openAccount(deps.keyring, written.account, written.wrappedKey).account, replayed: written.replayed === true };
    },

    async listPlans(tenantId) {
      return [...(await deps.tenants.get(tenantId)).settings.plans].sort(byRank);
    },

    async setPlan(tenantId, raw) {
      const plan: Plan = { ...raw, name: raw.name.trim(), entitlements: [...raw.entitlements] };
      const violations = planViolations(plan, "plan.");
      if (violations.length > 0) throw invalidArgument(violations[0]!.field, violations[0]!.description);
      await deps.tenants.update(
        tenantId,
        (current) => {
          const others = current.settings.plans.filter((p) => p.id !== plan.id);
          if (others.length >= MAX_PLANS) throw invalidArgument("plan.id", `a tenant has at most ${MAX_PLANS} plans`);
          const previous = current.settings.plans.find((p) => p.id === plan.id);
          if (previous?.free && !plan.free)
            throw new DomainError("failed_precondition", "FREE_PLAN_REQUIRED", "mark another plan free first: a tenant with plans has one free plan");
          // One free plan: the first plan is free whatever it says, a new free plan takes the mark.
          const free = plan.free || others.length === 0 || (!others.some((p) => p.free) && !previous);
          const plans = [...others.map((p) => (free && p.free ? { ...p, free: false } : p)), { ...plan, free }];
          return { name: current.name, settings: { ...current.settings, plans } };
        },
        "tenant.",
      );
      // The tenant's invalidation drops its settings everywhere: entitlements show at once.
      return (await deps.tenants.get(tenantId)).settings.plans.find((p) => p.id === plan.id)!;
    },

    async deletePlan(tenantId, planId) {
      if (planId === "") throw invalidArgument("plan_id", "is required");
      await deps.tenants.update(tenantId, (current) => {
        const plan = current.settings.plans.find((p) => p.id === planId);
        if (!plan) throw new DomainError("not_found", "PLAN_NOT_FOUND", "the tenant has no such plan");
        if (current.settings.trialPlan === planId) throw new DomainError("failed_precondition", "PLAN_IN_USE", "it is the tenant's trial_plan");
        if (plan.free && current.settings.plans.length > 1)
          throw new DomainError("failed_precondition", "PLAN_IN_USE", "it is the free plan: mark another plan free first");
        return { name: current.name, settings: { ...current.settings, plans: current.settings.plans.filter((p) => p.id !== planId) } };
      });
    },
  };
}

export interface SubscriptionRun {
  expired: number;
  reminded: number;
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The job: for every tenant, each trial or non-renewing subscription whose period
 * ended moves to the free plan (status EXPIRED) and its owner is told; each renewing
 * active subscription whose period ends within the tenant's renewal_reminder_days
 * gets one reminder for that period end. Every account is changed in its own
 * transaction, re-checked under its lock, with its message queued in the same
 * transaction: a second instance (or a rerun after a crash) finds nothing left
 * to do for it, so nothing is sent twice. Each transition is audited (actor "system").
 */
export function createSubscriptionJob(deps: {
  tenants: TenantReader;
  accounts: Pick<AccountWriter, "updateAccount" | "listSubscriptionsDue">;
  keyring: Keyring;
  audit: AuditLog;
  cache: Pick<SubscriptionCache, "changed">;
  random?: Random;
  onMessageQueued: () => void;
}): { run(at: number): Promise<SubscriptionRun> } {
  async function each(tenant: Tenant, kind: "expiry" | "reminder", at: number, decide: (current: StoredAccount, wrappedKey: string) => AccountUpdate) {
    let done = 0;
    let afterId: string | undefined;
    const endsBy = kind === "expiry" ? at : at + tenant.settings.renewalReminderDays * DAY;
    for (;;) {
      const ids = await deps.accounts.listSubscriptionsDue({
        tenantId: tenant.id,
        kind,
        endsBy,
        ...(kind === "reminder" && { notBefore: at }),
        ...(afterId !== undefined && { afterId }),
        limit: JOB_BATCH,
      });
      for (const accountId of ids) {
        let acted = false;
        const written = await deps.accounts.updateAccount({
          tenantId: tenant.id,
          accountId,
          at,
          change: (current, _others, wrappedKey) => {
            const update = decide(current, wrappedKey);
            acted = Object.keys(update).length > 0;
            return acted ? { ...update, events: accountChangeEvents(current, update, at) } : update;
          },
        });
        if (!written || !acted) continue;
        done++;
        if (kind === "expiry") await deps.cache.changed(accountId);
        deps.onMessageQueued();
        await deps.audit.record({
          tenantId: tenant.id,
          actor: "system",
          action: kind === "expiry" ? "subscription.expired" : "subscription.renewal_reminder",
          target: `account:${accountId}`,
          reason: kind === "expiry" ? "period ended" : `period ends ${isoDay(written.account.planExpiresAt ?? at)}`,
          ip: "",
          userAgent: "",
          outcome: "success",
        });
      }
      if (ids.length < JOB_BATCH) return done;
      afterId = ids[ids.length - 1];
    }
  }

  /** The account's notice, by mail; none for an account without an address (a phone's, a provider's without email). */
  function messages(current: StoredAccount, wrappedKey: string, kind: MessageKind, variables: Record<string, string>, at: number) {
    const { account, dataKey } = openAccount(deps.keyring, current, wrappedKey);
    if (account.profile.email === "") return [];
    return [sealMessage(dataKey, account, { kind, to: account.profile.email, locale: account.locale, variables }, at, deps.random)];
  }

  return {
    async run(at) {
      const result: SubscriptionRun = { expired: 0, reminded: 0 };
      await forEachTenant(deps.tenants, async (tenant) => {
        const planName = (id: string) => tenant.settings.plans.find((p) => p.id === id)?.name ?? id;
        const free = freePlanOf(tenant.settings);
        result.expired += await each(tenant, "expiry", at, (current, wrappedKey) => {
          const due =
            current.planExpiresAt !== null &&
            current.planExpiresAt <= at &&
            current.planStatus !== SubscriptionStatus.EXPIRED &&
            current.planStatus !== SubscriptionStatus.NONE &&
            (current.planStatus === SubscriptionStatus.TRIALING || !current.planRenews);
          if (!due) return {};
          const variables: Record<string, string> = { plan: planName(current.plan), freePlan: free?.name ?? "" };
          const kind = current.planStatus === SubscriptionStatus.TRIALING ? MessageKind.TRIAL_ENDED : MessageKind.SUBSCRIPTION_EXPIRED;
          return {
            plan: free?.id ?? "",
            planStatus: SubscriptionStatus.EXPIRED,
            planExpiresAt: null,
            planRenews: false,
            messages: messages(current, wrappedKey, kind, variables, at),
          };
        });
        result.reminded += await each(tenant, "reminder", at, (current, wrappedKey) => {
          const end = current.planExpiresAt;
          const due =
            end !== null &&
            end > at &&
            end <= at + tenant.settings.renewalReminderDays * DAY &&
            current.planStatus === SubscriptionStatus.ACTIVE &&
            current.planRenews &&
            current.planRemindedFor !== end;
          if (!due) return {};
          const variables = { plan: planName(current.plan), date: isoDay(end) };
          return { planRemindedFor: end, messages: messages(current, wrappedKey, MessageKind.RENEWAL_REMINDER, variables, at) };
        });
      });
      return result;
    },
  };
}
