// The signed-in person's own profile: updates through a field mask, and
// push-notification tokens per device. The profile is sealed under the
// account's data key (accounts.ts); every change re-seals it and is written
// only if nobody changed it since it was read (retried a few times), so two
// devices registering tokens at once do not lose one another's.
import type { Keyring } from "../crypto/keyring.ts";
import { openAccount, sealProfile } from "./accounts.ts";
import { accountEvent, EventType } from "./events.ts";
import { DomainError, invalidArgument } from "./errors.ts";
import type { AccountReader, AccountWriter } from "./ports/accounts.ts";
import type { Tenants } from "./tenants.ts";
import type { Account, Locale, Profile } from "./types.ts";
import { parseLocale } from "./validation.ts";

/** Account fields UpdateAccount may change (FieldMask paths). Email changes only through the email-change flow. */
export const UPDATABLE_PATHS = ["display_name", "pronouns", "locale", "custom_attributes"] as const;
type UpdatablePath = (typeof UPDATABLE_PATHS)[number];

export const PROFILE_LIMITS = Object.freeze({
  displayNameLength: 200,
  pronounsLength: 50,
  customAttributeKeys: 50,
  customAttributeKeyLength: 64,
  customAttributesBytes: 8 * 1024,
  customAttributesDepth: 5,
  pushDevices: 20,
  deviceIdLength: 128,
  pushTokenLength: 1024,
});

/** The new values; only those named by the paths are read. */
export interface ProfileValues {
  displayName: string;
  pronouns: string;
  locale: string;
  customAttributes: Record<string, unknown> | undefined;
}

export interface PushTokenInput {
  deviceId: string;
  platform: string;
  token: string;
}

export interface Profiles {
  /** Changes the fields named by `paths`; invalid_argument naming the field (nothing written) for anything else. */
  update(tenantId: string, accountId: string, paths: readonly string[], values: ProfileValues): Promise<Account>;
  /**
   * Registers a device's token, replacing that device's previous one. Beyond
   * PROFILE_LIMITS.pushDevices devices the least recently registered is dropped
   * (its token is the likeliest to be stale).
   */
  addPushToken(tenantId: string, accountId: string, input: PushTokenInput | undefined): Promise<Account>;
  /** Removes a device's token; not_found when the device has none. */
  removePushToken(tenantId: string, accountId: string, deviceId: string): Promise<Account>;
}

const NOT_UPDATABLE_HINTS: Record<string, string> = {
  email: "changes only through StartEmailChange / ConfirmEmailChange",
  push_tokens: "changes through AddPushToken / RemovePushToken",
};

/** "custom_attributes.<key>": one tenant-defined attribute, set or removed without replacing the others. */
export const ATTRIBUTE_PATH_PREFIX = "custom_attributes.";

/** The attribute key a "custom_attributes.<key>" path names; invalid_argument (naming `field`) for a key no attribute may have. */
export function attributeKeyOf(field: string, path: string): string {
  const key = path.slice(ATTRIBUTE_PATH_PREFIX.length);
  if (key.length === 0 || key.length > PROFILE_LIMITS.customAttributeKeyLength || FORBIDDEN_TEXT.test(key) || key === "__proto__") {
    throw invalidArgument(field, `"${path.slice(0, 100)}": an attribute key is 1 to ${PROFILE_LIMITS.customAttributeKeyLength} printable characters`);
  }
  return key;
}

function checkPaths(paths: readonly string[]): { mask: Set<UpdatablePath>; attributes: string[] } {
  if (paths.length === 0) throw invalidArgument("update_mask", `must name at least one field (${UPDATABLE_PATHS.join(", ")})`);
  const attributes: string[] = [];
  for (const path of paths) {
    if (path.startsWith(ATTRIBUTE_PATH_PREFIX)) {
      attributes.push(attributeKeyOf("update_mask", path));
      continue;
    }
    if (!(UPDATABLE_PATHS as readonly string[]).includes(path)) {
      const why = NOT_UPDATABLE_HINTS[path] ?? `cannot be updated; updatable fields: ${UPDATABLE_PATHS.join(", ")}`;
      throw invalidArgument("update_mask", `"${path.slice(0, 100)}" ${why}`, "FIELD_NOT_UPDATABLE");
    }
  }
  const mask = new Set(paths.filter((p) => !p.startsWith(ATTRIBUTE_PATH_PREFIX)) as UpdatablePath[]);
  if (attributes.length > 0 && mask.has("custom_attributes"))
    throw invalidArgument("update_mask", "names custom_attributes both whole and by attribute: name one or the other");
  return { mask, attributes: [...new Set(attributes)] };
}

// Control characters and bidirectional overrides (text that displays differently from what it is).
const FORBIDDEN_TEXT = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

/** Free text shown to people: NFC, trimmed, bounded in characters, no control characters. */
export function profileText(field: string, raw: string, maxLength: number): string {
  if (raw.length > maxLength * 4) throw invalidArgument(field, `must be at most ${maxLength} characters`);
  const text = raw.normalize("NFC").trim();
  if ([...text].length > maxLength) throw invalidArgument(field, `must be at most ${maxLength} characters`);
  if (FORBIDDEN_TEXT.test(text)) throw invalidArgument(field, "must not contain control characters");
  return text;
}

/** Checks tenant-defined attributes (or an identity's profile) against PROFILE_LIMITS; every failure names `field`. */
export function checkCustomAttributes(value: Record<string, unknown> | undefined, field = "account.custom_attributes"): Record<string, unknown> {
  const limits = PROFILE_LIMITS;
  if (value === undefined) return {};
  const keyCount = Object.keys(value).length;
  if (keyCount > limits.customAttributeKeys) throw invalidArgument(field, `must have at most ${limits.customAttributeKeys} keys (has ${keyCount})`);
  const walk = (node: unknown, depth: number): void => {
    if (node === null || typeof node === "string" || typeof node === "boolean") return;
    if (typeof node === "number") {
      if (!Number.isFinite(node)) throw invalidArgument(field, "numbers must be finite");
      return;
    }
    if (typeof node !== "object") throw invalidArgument(field, "must hold only JSON values");
    if (depth > limits.customAttributesDepth) throw invalidArgument(field, `must be nested at most ${limits.customAttributesDepth} levels deep`);
    if (Array.isArray(node)) {
      for (const item of node) walk(item, depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(node)) {
      if (key.length === 0 || key.length > limits.customAttributeKeyLength || FORBIDDEN_TEXT.test(key) || key === "__proto__") {
        throw invalidArgument(field, `keys must be 1 to ${limits.customAttributeKeyLength} printable characters`);
      }
      walk(child, depth + 1);
    }
  };
  walk(value, 1);
  const bytes = Buffer.byteLength(JSON.stringify(value));
  if (bytes > limits.customAttributesBytes) throw invalidArgument(field, `must be at most ${limits.customAttributesBytes} bytes as JSON (is ${bytes})`);
  return value;
}

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;
const PLATFORM = /^[a-z0-9_-]{1,32}$/;

function checkDeviceId(field: string, raw: string): string {
  if (raw.length === 0) throw invalidArgument(field, "is required");
  if (raw.length > PROFILE_LIMITS.deviceIdLength || !VISIBLE_ASCII.test(raw)) {
    throw invalidArgument(field, `must be 1 to ${PROFILE_LIMITS.deviceIdLength} visible ASCII characters`);
  }
  return raw;
}

function checkPushToken(input: PushTokenInput | undefined): PushTokenInput {
  if (!input) throw invalidArgument("push_token", "is required");
  const deviceId = checkDeviceId("push_token.device_id", input.deviceId);
  const platform = input.platform.toLowerCase();
  if (platform.length === 0) throw invalidArgument("push_token.platform", "is required");
  if (!PLATFORM.test(platform)) throw invalidArgument("push_token.platform", 'must be a platform name such as "fcm" or "apns"');
  if (input.token.length === 0) throw invalidArgument("push_token.token", "is required");
  if (input.token.length > PROFILE_LIMITS.pushTokenLength || !VISIBLE_ASCII.test(input.token)) {
    throw invalidArgument("push_token.token", `must be 1 to ${PROFILE_LIMITS.pushTokenLength} visible ASCII characters`);
  }
  return { deviceId, platform, token: input.token };
}

export function createProfiles(deps: {
  accounts: Pick<AccountReader, "getAccount"> & Pick<AccountWriter, "updateProfile">;
  keyring: Keyring;
  tenants: Pick<Tenants, "get">;
  now: () => number;
}): Profiles {
  /** Applies `change` to the freshly read account and writes it if nobody wrote in between; retries otherwise. */
  async function mutate(tenantId: string, accountId: string, change: (account: Account) => { profile: Profile; locale: Locale }): Promise<Account> {
    // Each failed write means another one succeeded: 8 attempts outlast 7 writers at once.
    for (let attempt = 0; attempt < 8; attempt++) {
      const found = await deps.accounts.getAccount(tenantId, accountId);
      if (!found) throw new DomainError("not_found", "ACCOUNT_NOT_FOUND", "account not found");
      const { account, dataKey } = openAccount(deps.keyring, found.account, found.wrappedKey);
      const { profile, locale } = change(account);
      const at = deps.now();
      const written = await deps.accounts.updateProfile({
        tenantId,
        accountId,
        expectedProfileSealed: found.account.profileSealed,
        profileSealed: sealProfile(dataKey, accountId, profile),
        locale,
        at,
        events: [accountEvent(EventType.ACCOUNT_UPDATED, { tenantId, id: accountId }, at)],
      });
      if (written) return { ...account, profile, locale, updatedAt: at };
    }
    throw new DomainError("unavailable", "CONCURRENT_UPDATE", "the account is being changed by other requests; retry");
  }

  return {
    async update(tenantId, accountId, paths, values) {
      // Everything is checked before anything is read or written.
      const { mask, attributes } = checkPaths(paths);
      const displayName = mask.has("display_name") ? profileText("account.display_name", values.displayName, PROFILE_LIMITS.displayNameLength) : undefined;
      const pronouns = mask.has("pronouns") ? profileText("account.pronouns", values.pronouns, PROFILE_LIMITS.pronounsLength) : undefined;
      const customAttributes = mask.has("custom_attributes") ? checkCustomAttributes(values.customAttributes) : undefined;
      // Single attributes: each named key takes the request's value, or goes when the request has none;
      // the others stay as stored at the moment of the (compare-and-set) write.
      const given = values.customAttributes ?? {};
      const merge = (current: Record<string, unknown>) => {
        const next: Record<string, unknown> = { ...current };
        for (const key of attributes) {
          if (Object.hasOwn(given, key)) next[key] = given[key];
          else delete next[key];
        }
        return checkCustomAttributes(next);
      };
      if (attributes.length > 0) checkCustomAttributes(Object.fromEntries(attributes.filter((k) => Object.hasOwn(given, k)).map((k) => [k, given[k]])));
      // An empty locale in the mask resets it to the tenant's default.
      const locale = mask.has("locale") ? parseLocale("account.locale", values.locale, (await deps.tenants.get(tenantId)).settings.defaultLocale) : undefined;
      return mutate(tenantId, accountId, (account) => ({
        profile: {
          ...account.profile,
          ...(displayName !== undefined && { displayName }),
          ...(pronouns !== undefined && { pronouns }),
          ...(customAttributes !== undefined && { customAttributes }),
          ...(attributes.length > 0 && { customAttributes: merge(account.profile.customAttributes) }),
        },
        locale: locale ?? account.locale,
      }));
    },

    async addPushToken(tenantId, accountId, input) {
      const token = checkPushToken(input);
      return mutate(tenantId, accountId, (account) => {
        const others = account.profile.pushTokens.filter((t) => t.deviceId !== token.deviceId);
        // Newest last; beyond the bound the least recently registered devices go.
        others.sort((a, b) => a.createdAt - b.createdAt);
        const kept = others.slice(Math.max(0, others.length - (PROFILE_LIMITS.pushDevices - 1)));
        return { profile: { ...account.profile, pushTokens: [...kept, { ...token, createdAt: deps.now() }] }, locale: account.locale };
      });
    },

    async removePushToken(tenantId, accountId, rawDeviceId) {
      const deviceId = checkDeviceId("device_id", rawDeviceId);
      return mutate(tenantId, accountId, (account) => {
        const pushTokens = account.profile.pushTokens.filter((t) => t.deviceId !== deviceId);
        if (pushTokens.length === account.profile.pushTokens.length) {
          throw new DomainError("not_found", "PUSH_TOKEN_NOT_FOUND", "no push token is registered for this device");
        }
        return { profile: { ...account.profile, pushTokens }, locale: account.locale };
      });
    },
  };
}
