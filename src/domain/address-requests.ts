// Messages asked for by an address anyone may type (a reset, a resend): the
// answer must not tell, in time either, whether the address is known. So the
// request path does the same work for both: one outbox row sealed under a data
// key — the owner's (a "request" naming the identity), or a throwaway one (a
// decoy naming nobody). The existence-dependent work (the link token, the
// message itself) happens in the delivery worker, which opens the row: a
// request becomes the message, a decoy is settled with nothing sent. The row is
// durable, so a crash after the answer loses nothing; the owner's row goes with
// the account on erasure, like any of its messages.
import { openAccount, sealMessage } from "./accounts.ts";
import { type FoundIdentity, linkBase } from "./found-identity.ts";
import type { AccountReader, AccountWriter } from "./ports/accounts.ts";
import type { OutboxWriter } from "./ports/outbox.ts";
import type { TokenStore } from "./ports/tokens.ts";
import type { Tenants } from "./tenants.ts";
import { MessageKind, type MessagePayload } from "./messages.ts";
import { issueLinkToken } from "./one-time-tokens.ts";
import type { ClaimedMessage, OutboxMessage } from "./ports/outbox.ts";
import type { Random } from "./ports/random.ts";
import type { Keyring } from "../crypto/keyring.ts";
import type { Locale, Tenant } from "./types.ts";

const MINUTE = 60_000;

/** What a queued request (kind PASSWORD_RESET, VERIFY_EMAIL, SIGNUP_EXISTING or PHONE_EXISTING) carries until the worker opens it. */
export interface QueuedRequest {
  identityId: string;
  /** Token data (a second sign-up's password hash rides on its verification link). */
  data?: Record<string, string>;
}

/** The payload sealed in a request row: a message without recipient or variables, and the request. */
export interface RequestPayload extends MessagePayload {
  request: QueuedRequest;
}

export type RequestKind =
  | typeof MessageKind.PASSWORD_RESET
  | typeof MessageKind.VERIFY_EMAIL
  | typeof MessageKind.SIGNUP_EXISTING
  | typeof MessageKind.PHONE_EXISTING;

export interface AddressRequestDeps {
  accounts: AccountReader & AccountWriter;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  tokens: TokenStore;
  outbox: OutboxWriter;
  now: () => number;
  random: Random;
  publicUrl: string;
  verificationLinkTtlMs: number;
  /** Called after messages are queued, to wake the outbox worker. */
  onMessageQueued: () => void;
}

export interface AddressRequests {
  /**
   * Queues `kind` for `target` (its message is built when delivered), or a decoy
   * when `target` is undefined: the same work either way. `locale`: the request's; empty: the account's.
   */
  queue(tenant: Tenant, kind: RequestKind, target: FoundIdentity | undefined, locale: Locale | undefined, data?: Record<string, string>): Promise<void>;
  /**
   * Opens a claimed outbox row for delivery: the message; undefined when its
   * account (and key) is gone; null when there is nothing to send (a decoy, or a
   * request that no longer applies: the identity is gone, or already verified).
   */
  open(message: ClaimedMessage, openMessage: (message: ClaimedMessage) => Promise<MessagePayload | undefined>): Promise<MessagePayload | null | undefined>;
}

/** Reset links live 10 minutes (DESIGN: out-of-band codes expire within 10 minutes). */
export const RESET_CODE_TTL_MS = 10 * MINUTE;
/** How long after answering the worker is woken for a request (it polls anyway). */
const WAKE_DELAY_MS = 50;
// Decoys name no identity; an id of the same length keeps the sealed row the same size.
const DECOY_IDENTITY = "0".repeat(26);

/**
 * An outbox row naming nobody, sealed under a throwaway key: what a flow queues
 * in place of a message it must not send (its address is taken, or unknown), so
 * the write is the same. The worker settles it without sending anything.
 */
export function sealDecoy(keyring: Pick<Keyring, "newDataKey">, tenantId: string, kind: MessageKind, at: number, random?: Random): OutboxMessage {
  const payload: MessagePayload = { kind, to: "", locale: "" as Locale, variables: {} };
  return sealMessage(keyring.newDataKey("").key, { id: "", tenantId }, payload, at, random);
}

export function createAddressRequests(deps: AddressRequestDeps, fingerprint: (account: FoundIdentity["account"]) => string): AddressRequests {
  const { keyring, now, random } = deps;

  return {
    async queue(tenant, kind, target, locale, data) {
      // Unwrapping the owner's key and wrapping a throwaway one cost alike (one AES-GCM each).
      const dataKey = target ? keyring.unwrapDataKey(target.account.id, target.wrappedKey) : keyring.newDataKey("").key;
      const payload: RequestPayload = {
        kind,
        to: "",
        locale: locale ?? ("" as Locale),
        variables: {},
        request: { identityId: target?.identity.id ?? DECOY_IDENTITY, ...(data ? { data } : {}) },
      };
      await deps.outbox.enqueue([sealMessage(dataKey, { id: target?.account.id ?? "", tenantId: tenant.id }, payload, now(), random)]);
      // The worker's part (a token and a mail for a known address, nothing for a decoy) must not
      // overlap this answer on its way out: it is woken a moment later, not at once.
      setTimeout(deps.onMessageQueued, WAKE_DELAY_MS).unref();
    },

    async open(message, openMessage) {
      if (message.accountId === "") return null; // a decoy
      const payload = (await openMessage(message)) as RequestPayload | MessagePayload | undefined;
      if (!payload || !("request" in payload)) return payload;
      const found = await deps.accounts.getAccount(message.tenantId, message.accountId);
      if (!found) return undefined;
      const identity = (await deps.accounts.listIdentities(found.account.id)).find((i) => i.id === payload.request.identityId);
      if (!identity) return null;
      const tenant = await deps.tenants.get(message.tenantId);
      const { account } = openAccount(keyring, found.account, found.wrappedKey);
      const locale = (payload.locale || account.locale) as Locale;
      const base = linkBase(tenant, deps.publicUrl);
      if (payload.kind === MessageKind.PASSWORD_RESET) {
        const { token } = await issueLinkToken(deps, "reset_password", identity, RESET_CODE_TTL_MS, {
          password: fingerprint(found.account),
          address: identity.lookupHash,
        });
        return {
          kind: payload.kind,
          to: account.profile.email,
          locale,
          variables: { link: `${base}/reset-password?token=${token}`, expiresInMinutes: String(RESET_CODE_TTL_MS / MINUTE) },
        };
      }
      if (payload.kind === MessageKind.SIGNUP_EXISTING || payload.kind === MessageKind.PHONE_EXISTING) {
        // A sign-up with a taken address, or a taken phone number added: its owner hears of it by mail (in the account's locale first).
        return {
          kind: payload.kind,
          to: account.profile.email,
          locale: (account.locale || payload.locale) as Locale,
          variables: { link: `${base}/sign-in`, resetLink: `${base}/reset-password` },
        };
      }
      if (identity.verifiedAt !== null) return null; // verified meanwhile: no link needed
      const { token } = await issueLinkToken(deps, "verify_email", identity, deps.verificationLinkTtlMs, payload.request.data);
      return {
        kind: payload.kind,
        to: account.profile.email,
        locale,
        variables: { link: `${base}/verify-email?token=${token}`, expiresInMinutes: String(Math.round(deps.verificationLinkTtlMs / MINUTE)) },
      };
    },
  };
}
