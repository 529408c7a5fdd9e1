// User management by admins and API keys (AdminService): the per-account rules
// of domain/authorization.ts applied under the store's locks (so the last super
// admin survives concurrent changes), invitations, and session revocation that
// commits with the change (domain/revocations.ts). See docs/administration.md#users.
import { createHash } from "node:crypto";
import type { Keyring } from "../crypto/keyring.ts";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { MessageKind, type MessagePayload } from "./messages.ts";
import { EMAIL_INDEX, identityView, type IdentityView, newEmailAccount, openAccount, sealMessage, sealProfile } from "./accounts.ts";
import { assertKeepsASuperAdmin, assertMayGrantRole, assertMayManageAccount } from "./authorization.ts";
import type { Erasure } from "./erasure.ts";
import { DomainError, invalidArgument } from "./errors.ts";
import { accountChangeEvents } from "./account-events.ts";
import { accountEvent, EventType } from "./events.ts";
import { linkBase } from "./identity.ts";
import { isId } from "./ids.ts";
import type { Limits } from "./limits.ts";
import { discardLinkToken, issueLinkToken } from "./one-time-tokens.ts";
import {
  type AccountListQuery,
  type AccountReader,
  type AccountUpdate,
  type AccountWriter,
  DuplicateIdentityError,
  type StoredAccount,
  type StoredIdentity,
} from "./ports/accounts.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import type { TokenStore } from "./ports/tokens.ts";
import { actorOf, type Principal } from "./principal.ts";
import { PROFILE_LIMITS, profileText, type ProfileValues, type Profiles } from "./profile.ts";
import { passwordFingerprint, type RecoveryFlows } from "./recovery.ts";
import type { Revocations } from "./revocations.ts";
import type { RequestMeta, Sessions } from "./sessions.ts";
import { pageSizeOf, type Tenants } from "./tenants.ts";
import { AccountState, IdentityKind, Role, SubscriptionStatus, type Account, type Locale, type Tenant } from "./types.ts";
import { checkNewPassword, normalizeEmail, parseLocale } from "./validation.ts";
import { trialAtCreation } from "./subscriptions.ts";

const MINUTE = 60_000;
/** How long an invitation link stays valid: 7 days, the same for every tenant. */
export const INVITATION_TTL_MS = 7 * 24 * 60 * MINUTE;
export const PLAN_MAX_LENGTH = 64;
export const REASON_MAX_LENGTH = 1000;

export interface AdminUserDeps {
  /** Reads and ordinary writes; deletion goes through `erasure`. */
  accounts: AccountReader & AccountWriter;
  outbox: OutboxWriter;
  /** Invitation tokens, by hash. */
  tokens: TokenStore;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  passwords: PasswordHasher;
  /** Ends sessions carrying a stale role directly (SetUserRole). */
  sessions: Pick<Sessions, "endWhere">;
  /** Settles the revocations a committed change queued. */
  revocations: Pick<Revocations, "settle" | "revokeAll">;
  limits: Limits;
  now: () => number;
  /** Invitation tokens and ids draw from it. */
  random: Random;
  publicUrl: string;
  /** Called after messages are queued, to wake the outbox worker. */
  onMessageQueued: () => void;
  recovery: Pick<RecoveryFlows, "startPasswordReset">;
  profiles: Pick<Profiles, "update">;
  erasure: Pick<Erasure, "erase">;
}

/** The caller (authorized for the tenant) and the account acted on. */
export interface UserTarget {
  principal: Principal;
  tenantId: string;
  accountId: string;
  /** The request field naming the account, for errors (default "account_id"). */
  field?: string;
}

export interface CreateUserInput {
  principal: Principal;
  tenantId: string;
  email: string;
  /** "" for none. */
  password: string;
  /** A Role value; 0 means USER. */
  role: number;
  sendWelcome: boolean;
  displayName: string;
  /** "" for the tenant's default. */
  locale: string;
}

export interface UserListFilter {
  tenantId: string;
  /** AccountState value; 0 for any. */
  state: number;
  /** Role value; 0 for any. */
  role: number;
  /** "" for any. */
  plan: string;
  /** SubscriptionStatus value; 0 for any. */
  subscriptionStatus: number;
  createdAtOrAfter?: number | undefined;
  createdBefore?: number | undefined;
  /** "" for any; else only the account with exactly this address (blind index lookup). */
  email: string;
  /** 0 for 50; at most 500. */
  pageSize: number;
  pageToken: string;
}

export interface UserPage {
  /** Oldest first. */
  users: Account[];
  /** "" on the last page. */
  nextPageToken: string;
}

export interface AdminUsers {
  /** already_exists (EMAIL_TAKEN) when the tenant has an account with the address. */
  create(input: CreateUserInput): Promise<Account>;
  /** invalid_argument (REASON_REQUIRED) without a reason; not_found outside the tenant. */
  get(target: UserTarget & { reason: string }): Promise<Account>;
  /** The user's identities of every kind, values opened (read under the same stated reason as get). */
  identities(target: UserTarget): Promise<IdentityView[]>;
  list(filter: UserListFilter): Promise<UserPage>;
  update(target: UserTarget, paths: readonly string[], values: ProfileValues): Promise<Account>;
  setRole(target: UserTarget, role: number): Promise<Account>;
  activate(target: UserTarget): Promise<Account>;
  deactivate(target: UserTarget): Promise<Account>;
  /** Erasure (src/domain/erasure.ts); the reason and request origin go to its audit event. */
  delete(target: UserTarget & { reason: string; meta: RequestMeta }): Promise<void>;
  /** A reset link to the account's address; a new invitation to an invited person who has not accepted yet. */
  sendPasswordReset(target: UserTarget & { meta: RequestMeta }): Promise<void>;
  /** Ends every session of the account, durably (src/domain/revocations.ts); returns how many ended now. */
  revokeSessions(target: UserTarget): Promise<number>;
}

const notFound = () => new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");

/** The id the target names; invalid_argument when empty, not_found (without a query) when malformed: it names no account. */
function accountIdOf({ accountId, field = "account_id" }: UserTarget): string {
  if (accountId === "") throw invalidArgument(field, "is required");
  if (!isId(accountId)) throw notFound();
  return accountId;
}

function roleOf(field: string, value: number): Role {
  if (value === Role.USER || value === Role.ADMIN || value === Role.SUPER_ADMIN) return value;
  throw invalidArgument(field, value === 0 ? "is required" : "must be ROLE_USER, ROLE_ADMIN or ROLE_SUPER_ADMIN");
}

function stateOf(field: string, value: number): AccountState {
  if ((Object.values(AccountState) as number[]).includes(value)) return value as AccountState;
  throw invalidArgument(field, "is not an account state");
}

function subscriptionStatusOf(field: string, value: number): SubscriptionStatus {
  if ((Object.values(SubscriptionStatus) as number[]).includes(value)) return value as SubscriptionStatus;
  throw invalidArgument(field, "is not a subscription status");
}

/** Why an admin reads someone's data: required, recorded in the audit trail. */
function statedReason(raw: string): string {
  const reason = raw.trim();
  if (reason === "") throw invalidArgument("reason", "is required: say why you read this person's data (it is recorded in the audit trail)", "REASON_REQUIRED");
  if ([...reason].length > REASON_MAX_LENGTH) throw invalidArgument("reason", `must be at most ${REASON_MAX_LENGTH} characters`);
  return reason;
}

// Page tokens: base64url("u1.<created_at>.<id>.<filter fingerprint>"). The
// position is the last account of the page; the fingerprint ties the token to
// the tenant and filters it was issued for.
type ListPosition = NonNullable<AccountListQuery["after"]>;

function fingerprint(query: Omit<AccountListQuery, "after" | "limit">): string {
  const key = JSON.stringify([
    query.tenantId,
    query.role ?? null,
    query.state ?? null,
    query.plan ?? null,
    ...(query.planStatus === undefined ? [] : [query.planStatus]),
    query.createdAtOrAfter ?? null,
    query.createdBefore ?? null,
  ]);
  return createHash("sha256").update(key).digest("base64url").slice(0, 12);
}

function encodePageToken(position: ListPosition, filter: string): string {
  return Buffer.from(`u1.${position.createdAt}.${position.id}.${filter}`).toString("base64url");
}

function decodePageToken(token: string, filter: string): ListPosition | undefined {
  if (token === "") return undefined;
  const malformed = () => invalidArgument("page_token", "is not a next_page_token of a previous call", "PAGE_TOKEN_INVALID");
  if (token.length > 200 || !/^[A-Za-z0-9_-]+$/.test(token)) throw malformed();
  const decoded = Buffer.from(token, "base64url").toString("latin1");
  const match = /^u1\.(0|[1-9][0-9]{0,15})\.([0-9a-f-]{36})\.([A-Za-z0-9_-]{12})$/.exec(decoded);
  // Only the canonical encoding is accepted (the decoder skips stray characters).
  if (!match || !isId(match[2]!) || Buffer.from(decoded, "latin1").toString("base64url") !== token) throw malformed();
  const createdAt = Number(match[1]);
  if (!Number.isSafeInteger(createdAt)) throw malformed();
  if (match[3] !== filter) throw invalidArgument("page_token", "was issued for other filters; keep the filters while paging", "PAGE_TOKEN_INVALID");
  return { createdAt, id: match[2]! };
}

export function createAdminUsers(deps: AdminUserDeps): AdminUsers {
  const { accounts, outbox, keyring, now, random } = deps;

  /** The account named by the target; invalid_argument when unnamed, not_found when not in the tenant. */
  async function load(target: UserTarget) {
    const found = await accounts.getAccount(target.tenantId, accountIdOf(target));
    if (!found) throw notFound();
    return found;
  }

  /** An account the caller may change (mayManageAccount); not_found when not in the tenant. */
  async function loadManaged(target: UserTarget) {
    const found = await load(target);
    assertMayManageAccount(target.principal, found.account);
    return found;
  }

  /**
   * Applies `decide` to the locked account, after checking the caller may manage
   * it, and returns the account as written and as it was.
   */
  async function change(target: UserTarget, decide: (current: StoredAccount, otherActiveSuperAdmins: number) => AccountUpdate) {
    let before: StoredAccount | undefined;
    const at = now();
    const written = await accounts.updateAccount({
      tenantId: target.tenantId,
      accountId: accountIdOf(target),
      at,
      change: (current, others) => {
        assertMayManageAccount(target.principal, current);
        before = current;
        const update = decide(current, others);
        return { ...update, events: accountChangeEvents(current, update, at, random) };
      },
    });
    if (!written || !before) throw notFound();
    return { account: openAccount(keyring, written.account, written.wrappedKey).account, before };
  }

  function invitation(tenant: Tenant, to: string, locale: Locale, token: string): MessagePayload {
    return {
      kind: MessageKind.INVITATION,
      to,
      locale,
      variables: { link: `${linkBase(tenant, deps.publicUrl)}/accept-invitation?token=${token}`, expiresInMinutes: String(INVITATION_TTL_MS / MINUTE) },
    };
  }

  /** A new single-use invitation token, bound (like a reset link) to the account's current password and address. */
  function issueInvitation(account: StoredAccount, identity: StoredIdentity) {
    return issueLinkToken(deps, "invitation", identity, INVITATION_TTL_MS, { password: passwordFingerprint(account), address: identity.lookupHash });
  }

  const open = (found: { account: StoredAccount; wrappedKey: string }) => openAccount(keyring, found.account, found.wrappedKey).account;

  return {
    async create(input) {
      const { principal, tenantId } = input;
      const role = input.role === 0 ? Role.USER : roleOf("role", input.role);
      assertMayGrantRole(principal, role, tenantId);
      const tenant = await deps.tenants.get(tenantId);
      const email = normalizeEmail("email", input.email);
      const locale = parseLocale("locale", input.locale, tenant.settings.defaultLocale);
      const displayName = profileText("display_name", input.displayName, PROFILE_LIMITS.displayNameLength);
      if (input.password === "" && !input.sendWelcome) {
        throw invalidArgument("password", "is required unless send_welcome is set (the person then chooses one through the invitation)");
      }
      const password = input.password === "" ? undefined : checkNewPassword("password", input.password, tenant.settings.passwordMinLength, [email]);
      const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
      // An admin hears when a message cannot go out, rather than having it dropped silently.
      if (input.sendWelcome) await deps.limits.consumeMessage(tenant, lookupHash, actorOf(principal));

      const passwordHash = password === undefined ? null : await deps.passwords.hash(password);
      const at = now();
      const rows = newEmailAccount(keyring, {
        tenantId,
        email,
        lookupHash,
        passwordHash,
        role,
        // With a password the admin vouches for the address; without, the invitation proves it.
        state: passwordHash === null ? AccountState.PENDING_VERIFICATION : AccountState.ACTIVE,
        locale,
        verifiedAt: passwordHash === null ? null : at,
        at,
        random,
      });
      const account = {
        ...rows.account,
        profileSealed: sealProfile(rows.dataKey, rows.account.id, { email, displayName, pronouns: "", customAttributes: {}, pushTokens: [] }),
        // The tenant's trial rule for a new account (src/domain/subscriptions.ts); an invitation's starts when accepted.
        ...trialAtCreation(tenant.settings, rows.identity, at),
      };
      const issued = input.sendWelcome ? await issueInvitation(account, rows.identity) : undefined;
      const messages = issued ? [sealMessage(rows.dataKey, account, invitation(tenant, email, locale, issued.token), at, random)] : [];
      try {
        const events = [accountEvent(EventType.ACCOUNT_CREATED, account, at, { identity_id: rows.identity.id, identity_kind: "email" }, random)];
        await accounts.createAccount({ account, wrappedKey: rows.wrappedKey, identity: rows.identity, messages, events });
      } catch (error) {
        if (issued) await discardLinkToken(deps, issued.token); // never usable: its account was not created
        if (error instanceof DuplicateIdentityError)
          throw new DomainError("already_exists", "EMAIL_TAKEN", "an account with this email address exists in the tenant");
        throw error;
      }
      if (messages.length > 0) deps.onMessageQueued();
      return open({ account, wrappedKey: rows.wrappedKey });
    },

    async get(target) {
      statedReason(target.reason);
      return open(await load(target));
    },

    async identities(target) {
      const found = await load(target);
      const dataKey = keyring.unwrapDataKey(found.account.id, found.wrappedKey);
      return (await accounts.listIdentities(found.account.id)).map((i) => identityView(dataKey, i));
    },

    async list(filter) {
      const pageSize = pageSizeOf(filter.pageSize);
      const query: Omit<AccountListQuery, "after" | "limit"> = {
        tenantId: filter.tenantId,
        ...(filter.role !== 0 && { role: roleOf("role", filter.role) }),
        ...(filter.state !== 0 && { state: stateOf("state", filter.state) }),
        ...(filter.plan !== "" && { plan: profileText("plan", filter.plan, PLAN_MAX_LENGTH) }),
        ...(filter.subscriptionStatus !== 0 && { planStatus: subscriptionStatusOf("subscription_status", filter.subscriptionStatus) }),
        ...(filter.createdAtOrAfter !== undefined && { createdAtOrAfter: filter.createdAtOrAfter }),
        ...(filter.createdBefore !== undefined && { createdBefore: filter.createdBefore }),
      };
      if (query.createdAtOrAfter !== undefined && query.createdBefore !== undefined && query.createdBefore <= query.createdAtOrAfter) {
        throw invalidArgument("created_before", "must be later than created_after");
      }

      if (filter.email !== "") {
        // One account at most: found through the blind index, then held to the other filters.
        const lookupHash = keyring.blindIndex(EMAIL_INDEX, normalizeEmail("email", filter.email));
        if (filter.pageToken !== "") throw invalidArgument("page_token", "is not a next_page_token of a previous call", "PAGE_TOKEN_INVALID");
        const found = await accounts.findByIdentity(filter.tenantId, IdentityKind.EMAIL, lookupHash);
        const a = found?.account;
        const matches =
          a !== undefined &&
          (query.role === undefined || a.role === query.role) &&
          (query.state === undefined || a.state === query.state) &&
          (query.plan === undefined || a.plan === query.plan) &&
          (query.planStatus === undefined || a.planStatus === query.planStatus) &&
          (query.createdAtOrAfter === undefined || a.createdAt >= query.createdAtOrAfter) &&
          (query.createdBefore === undefined || a.createdAt < query.createdBefore);
        return { users: matches && found ? [open(found)] : [], nextPageToken: "" };
      }

      const filterKey = fingerprint(query);
      const after = decodePageToken(filter.pageToken, filterKey);
      const rows = await accounts.listAccounts({ ...query, ...(after && { after }), limit: pageSize + 1 });
      const users = rows.slice(0, pageSize).map(open);
      const last = users[users.length - 1];
      return { users, nextPageToken: rows.length > pageSize && last ? encodePageToken({ createdAt: last.createdAt, id: last.id }, filterKey) : "" };
    },

    async update(target, paths, values) {
      await loadManaged(target);
      return deps.profiles.update(target.tenantId, target.accountId, paths, values);
    },

    async setRole(target, rawRole) {
      const role = roleOf("role", rawRole);
      assertMayGrantRole(target.principal, role, target.tenantId);
      const { account } = await change(target, (current, others) => {
        assertKeepsASuperAdmin(current, { kind: "set_role", role }, others);
        return current.role === role ? {} : { role, endSessions: "role_changed" };
      });
      // Sessions carry the role they were issued with: none may keep another one. What this
      // change (or an earlier attempt whose session store failed) queued is settled first.
      await deps.revocations.settle(target.tenantId, account.id);
      // Then any session still carrying another role (a sign-in that raced the change) ends
      // too, so a retry with the same role finishes the job. Best effort: were the session
      // store down, the queued revocation above already holds and is retried.
      await deps.sessions.endWhere(account.id, (session) => session.role !== role).catch(() => 0);
      return account;
    },

    async activate(target) {
      const { account } = await change(target, (current) => {
        switch (current.state) {
          case AccountState.PENDING_VERIFICATION:
            throw new DomainError(
              "failed_precondition",
              "IDENTITY_UNVERIFIED",
              "the account's email address is not verified yet; it can be activated once it is",
            );
          case AccountState.PENDING_ACTIVATION:
            return { state: AccountState.ACTIVE };
          case AccountState.DEACTIVATED:
            // Back to where it stood: an address never verified still needs verifying.
            return { state: current.emailVerified ? AccountState.ACTIVE : AccountState.PENDING_VERIFICATION };
          default:
            return {};
        }
      });
      return account;
    },

    async deactivate(target) {
      const { account } = await change(target, (current, others) => {
        assertKeepsASuperAdmin(current, { kind: "deactivate" }, others);
        // Queued again on a retry: the sessions end whether or not the state changes now.
        return current.state === AccountState.DEACTIVATED ? { endSessions: "deactivated" } : { state: AccountState.DEACTIVATED, endSessions: "deactivated" };
      });
      await deps.revocations.settle(target.tenantId, account.id);
      return account;
    },

    async delete(target) {
      const { tenantId, principal } = target;
      const accountId = accountIdOf(target);
      // The full erasure (data key destroyed, ledgered, rows deleted, sessions ended),
      // with this caller's rules checked under the account's lock.
      await deps.erasure.erase({
        tenantId,
        accountId,
        actor: actorOf(principal),
        reason: target.reason,
        meta: target.meta,
        check: (current, others) => {
          assertMayManageAccount(principal, current);
          assertKeepsASuperAdmin(current, { kind: "delete" }, others);
        },
      });
    },

    async sendPasswordReset(target) {
      const found = await loadManaged(target);
      const { account, dataKey } = openAccount(keyring, found.account, found.wrappedKey);
      if (found.account.passwordHash !== null || found.account.emailVerified) {
        await deps.recovery.startPasswordReset({ tenantId: target.tenantId, email: account.profile.email, locale: "", meta: target.meta });
        return;
      }
      // Invited and never accepted: a new invitation (earlier ones stay valid until they expire).
      const identity = (await accounts.listIdentities(account.id)).find((i) => i.kind === IdentityKind.EMAIL);
      if (!identity) throw new DomainError("failed_precondition", "NO_EMAIL_IDENTITY", "the account has no email address to send to");
      const tenant = await deps.tenants.get(target.tenantId);
      await deps.limits.consumeMessage(tenant, identity.lookupHash, target.meta.ip);
      const { token } = await issueInvitation(found.account, identity);
      await outbox.enqueue([sealMessage(dataKey, account, invitation(tenant, account.profile.email, account.locale, token), now(), random)]);
      deps.onMessageQueued();
    },

    async revokeSessions(target) {
      const found = await loadManaged(target);
      // Queued first, like a committed change's: it holds whatever the session store does now.
      return deps.revocations.revokeAll(target.tenantId, found.account.id, "sessions_revoked");
    },
  };
}
