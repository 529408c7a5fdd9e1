// Changing the email address of a signed-in account: start (a code to the new
// address, a notice to the old one), check the code, confirm. The old address
// stays in force until confirmation; the new one never belongs to two accounts
// (the identities' unique blind index decides), and whether it belongs to
// another account is never told to the caller before they prove they own it.
import { decryptString, encryptString, hashSecret, type Keyring } from "../crypto/keyring.ts";
import { MessageKind, type MessagePayload } from "./messages.ts";
import { EMAIL_INDEX, openAccount, sealIdentityValue, sealMessage, sealProfile } from "./accounts.ts";
import { sealDecoy } from "./address-requests.ts";
import { accountEvent, EventType } from "./events.ts";
import { DomainError, invalidArgument, unauthenticated } from "./errors.ts";
import type { Limits } from "./limits.ts";
import { randomDigits, takeOneTimeToken, tokenRefused } from "./one-time-tokens.ts";
import { type AccountReader, type AccountWriter, DuplicateIdentityError } from "./ports/accounts.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { SessionPrincipal } from "./principal.ts";
import type { RequestMeta } from "./sessions.ts";
import type { Tenants } from "./tenants.ts";
import { IdentityKind, type OneTimeToken } from "./types.ts";
import { normalizeEmail } from "./validation.ts";

const MINUTE = 60_000;
export const EMAIL_CHANGE_CODE_DIGITS = 8;
export const EMAIL_CHANGE_CODE_TTL_MS = 10 * MINUTE;
const PURPOSE = "change_email";
/** How often confirmation re-reads the account when its profile changed meanwhile. */
const CONFIRM_ATTEMPTS = 3;

export interface EmailChangeDeps {
  accounts: Pick<AccountReader, "getAccount" | "listIdentities" | "findByIdentity"> & Pick<AccountWriter, "changeEmail">;
  outbox: OutboxWriter;
  /** The pending change and its code, by hash. */
  tokens: TokenStore;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  limits: Limits;
  now: () => number;
  /** Codes and ids draw from it. */
  random: Random;
  /** Called after messages are queued, to wake the outbox worker. */
  onMessageQueued: () => void;
}

export interface EmailChangeInput {
  principal: SessionPrincipal;
  meta: RequestMeta;
}

export interface EmailChange {
  /** Answers alike whether or not the new address belongs to another account. */
  start(input: EmailChangeInput & { newEmail: string }): Promise<void>;
  /** The pending change's expiry when the code is valid; the code stays usable. */
  checkCode(input: EmailChangeInput & { code: string }): Promise<{ expiresAt: number }>;
  /** Uses the code and moves the account to the new address. */
  confirm(input: EmailChangeInput & { code: string }): Promise<void>;
}

// A code is stored under a hash bound to its account: the same digits of
// another account (or of another purpose) find nothing.
export const emailChangeCodeKey = (accountId: string, code: string) => hashSecret(`${PURPOSE}:${accountId}:${code}`);
// The account's one pending change names its code; starting again repoints it.
const pendingKey = (accountId: string) => hashSecret(`${PURPOSE}:pending:${accountId}`);
const newEmailContext = (accountId: string) => `email-change:${accountId}`;

const refused = () => tokenRefused("code");

export function createEmailChange(deps: EmailChangeDeps): EmailChange {
  const { accounts, outbox, tokens, keyring, limits, now, random } = deps;

  async function loadAccount(principal: SessionPrincipal) {
    const found = await accounts.getAccount(principal.tenantId, principal.accountId);
    if (!found) throw unauthenticated("SESSION_INVALID", "session is invalid or expired");
    return { stored: found.account, ...openAccount(keyring, found.account, found.wrappedKey) };
  }

  function isLive(
    token: OneTimeToken | undefined,
    principal: SessionPrincipal,
  ): token is OneTimeToken & { data: { newEmailSealed: string; newEmailLookup: string } } {
    return (
      token !== undefined &&
      token.purpose === PURPOSE &&
      token.accountId === principal.accountId &&
      token.tenantId === principal.tenantId &&
      token.expiresAt > now() &&
      typeof token.data?.newEmailSealed === "string" &&
      typeof token.data.newEmailLookup === "string"
    );
  }

  /** Counts the attempt, then finds the account's current pending change for this code. */
  async function pendingChange({ principal, meta, code: raw }: EmailChangeInput & { code: string }) {
    const code = raw.replace(/[\s-]/g, "");
    if (code.length === 0) throw invalidArgument("code", "is required");
    const tenant = await deps.tenants.get(principal.tenantId);
    await Promise.all([limits.consume("code_ip", tenant, meta.ip), limits.consume("code_account", tenant, principal.accountId)]);
    if (!/^\d+$/.test(code) || code.length !== EMAIL_CHANGE_CODE_DIGITS) throw refused();
    const hash = emailChangeCodeKey(principal.accountId, code);
    const [token, pending] = await Promise.all([tokens.peek(hash), tokens.peek(pendingKey(principal.accountId))]);
    // A code replaced by a newer start no longer counts, even if it is still stored.
    if (!isLive(token, principal) || pending?.data?.codeHash !== hash) throw refused();
    return { hash, token };
  }

  return {
    async start({ principal, meta, newEmail: raw }) {
      const tenant = await deps.tenants.get(principal.tenantId);
      const newEmail = normalizeEmail("new_email", raw);
      // Each start issues a code: counted with the code checks of the account.
      await limits.consume("code_account", tenant, principal.accountId);
      const { account, dataKey } = await loadAccount(principal);
      const newLookup = keyring.blindIndex(EMAIL_INDEX, newEmail);
      const currentLookup = keyring.blindIndex(EMAIL_INDEX, account.profile.email);
      if (newLookup === currentLookup) throw invalidArgument("new_email", "is already the account's address", "EMAIL_UNCHANGED");
      const identities = await accounts.listIdentities(account.id);
      const identity = identities.find((i) => i.kind === IdentityKind.EMAIL && i.lookupHash === currentLookup);
      if (!identity) throw new DomainError("failed_precondition", "NO_EMAIL_IDENTITY", "the account has no email identity to change");
      const holder = await accounts.findByIdentity(tenant.id, IdentityKind.EMAIL, newLookup);

      // The pending change is stored even when the address is taken, so both
      // answers do the same work and a start always replaces the previous one.
      const code = randomDigits(random, EMAIL_CHANGE_CODE_DIGITS);
      const hash = emailChangeCodeKey(account.id, code);
      const at = now();
      const expiresAt = at + EMAIL_CHANGE_CODE_TTL_MS;
      const base = { purpose: PURPOSE, tenantId: account.tenantId, accountId: account.id, identityId: identity.id, expiresAt } as const;
      await tokens.put(
        hash,
        { ...base, data: { newEmailSealed: encryptString(dataKey, newEmail, newEmailContext(account.id)), newEmailLookup: newLookup } },
        EMAIL_CHANGE_CODE_TTL_MS,
      );
      const previous = await tokens.peek(pendingKey(account.id));
      await tokens.put(pendingKey(account.id), { ...base, data: { codeHash: hash } }, EMAIL_CHANGE_CODE_TTL_MS);
      if (previous?.data?.codeHash) await tokens.take(previous.data.codeHash);

      const messages: MessagePayload[] = [];
      // The current address hears of every start, taken address or not: it is the caller's own.
      if (await limits.tryMessage(tenant, currentLookup, meta.ip)) {
        messages.push({ kind: MessageKind.EMAIL_CHANGE_REQUESTED, to: account.profile.email, locale: account.locale, variables: { newEmail } });
      }
      // A taken address hears nothing: its owner did not ask, and the caller is not told — not in
      // time either: its budget is counted and a decoy row (sent to nobody) written in its place.
      const newWithinBudget = await limits.tryMessage(tenant, newLookup, meta.ip);
      const rows = messages.map((payload) => sealMessage(dataKey, account, payload, at, random));
      if (newWithinBudget) {
        rows.push(
          holder
            ? sealDecoy(keyring, account.tenantId, MessageKind.EMAIL_CHANGE_CODE, at, random)
            : sealMessage(
                dataKey,
                account,
                {
                  kind: MessageKind.EMAIL_CHANGE_CODE,
                  to: newEmail,
                  locale: account.locale,
                  variables: { code, expiresInMinutes: String(EMAIL_CHANGE_CODE_TTL_MS / MINUTE) },
                },
                at,
                random,
              ),
        );
      }
      if (rows.length === 0) return;
      await outbox.enqueue(rows);
      deps.onMessageQueued();
    },

    async checkCode(input) {
      const { token } = await pendingChange(input);
      return { expiresAt: token.expiresAt };
    },

    async confirm(input) {
      const { principal } = input;
      const { hash } = await pendingChange(input);
      // take() is atomic: of two concurrent confirmations, one wins.
      const taken = await takeOneTimeToken(deps, "code", hash, PURPOSE);
      if (!isLive(taken, principal)) throw refused();
      for (let attempt = 0; attempt < CONFIRM_ATTEMPTS; attempt++) {
        const { account, dataKey, stored } = await loadAccount(principal);
        const newEmail = decryptString(dataKey, taken.data.newEmailSealed, newEmailContext(account.id));
        const at = now();
        // The notice is not subject to the message budget: it is the one the owner must get.
        const notice = sealMessage(
          dataKey,
          account,
          { kind: MessageKind.EMAIL_CHANGED_NOTICE, to: account.profile.email, locale: account.locale, variables: { newEmail } },
          at,
          random,
        );
        let changed: boolean;
        try {
          changed = await accounts.changeEmail({
            accountId: account.id,
            identityId: taken.identityId,
            lookupHash: taken.data.newEmailLookup,
            valueSealed: sealIdentityValue(dataKey, taken.identityId, newEmail),
            previousProfileSealed: stored.profileSealed,
            profileSealed: sealProfile(dataKey, account.id, { ...account.profile, email: newEmail }),
            at,
            messages: [notice],
            events: [
              accountEvent(EventType.IDENTITY_VERIFIED, account, at, { identity_id: taken.identityId, identity_kind: "email" }, random),
              accountEvent(EventType.ACCOUNT_UPDATED, account, at, {}, random),
            ],
          });
        } catch (error) {
          if (!(error instanceof DuplicateIdentityError)) throw error;
          // Told only to someone who proved, with the code, that they own the address.
          throw new DomainError("failed_precondition", "EMAIL_TAKEN", "the new address now belongs to another account");
        }
        if (changed) {
          deps.onMessageQueued();
          return;
        }
      }
      throw new DomainError("failed_precondition", "EMAIL_CHANGE_CONFLICT", "the account changed while the email change was confirmed; start again");
    },
  };
}
