// Records the domain works with, independent of storage and wire formats.

export const Role = { USER: 1, ADMIN: 2, SUPER_ADMIN: 3 } as const;
export type Role = (typeof Role)[keyof typeof Role];

export const AccountState = { PENDING_VERIFICATION: 1, PENDING_ACTIVATION: 2, ACTIVE: 3, DEACTIVATED: 4 } as const;
export type AccountState = (typeof AccountState)[keyof typeof AccountState];

export const IdentityKind = { EMAIL: 1, PHONE: 2, GUEST: 3, OIDC: 4 } as const;
export type IdentityKind = (typeof IdentityKind)[keyof typeof IdentityKind];

export const AssuranceLevel = { AAL1: 1, AAL2: 2 } as const;
export type AssuranceLevel = (typeof AssuranceLevel)[keyof typeof AssuranceLevel];

/** Second factors; RECOVERY_CODE is a way to answer a challenge, never a stored factor of its own. */
export const SecondFactorKind = { TOTP: 1, SMS: 2, RECOVERY_CODE: 3, PASSKEY: 4 } as const;
export type SecondFactorKind = (typeof SecondFactorKind)[keyof typeof SecondFactorKind];
/** Where an account stands on its plan (identity.v1.SubscriptionStatus); NONE: no subscription (the tenant's free plan applies). */
export const SubscriptionStatus = { NONE: 0, TRIALING: 1, ACTIVE: 2, PAST_DUE: 3, CANCELED: 4, EXPIRED: 5 } as const;
export type SubscriptionStatus = (typeof SubscriptionStatus)[keyof typeof SubscriptionStatus];
export const SUBSCRIPTION_STATUS_NAMES: Record<SubscriptionStatus, string> = {
  0: "none",
  1: "trialing",
  2: "active",
  3: "past_due",
  4: "canceled",
  5: "expired",
};

/** A plan of a tenant: what services gate features on (src/domain/subscriptions.ts). */
export interface Plan {
  /** Lower-case identifier, e.g. "free", "basic", "pro". */
  id: string;
  name: string;
  /** Orders plans: free < basic < pro. */
  rank: number;
  /** Strings services check, e.g. "exports", "api.calls.10k". */
  entitlements: string[];
  /** A trial of this plan lasts this many days (0: no trial). */
  trialDays: number;
  /** The tenant's free plan: where an ended trial or subscription lands. One per tenant. */
  free: boolean;
}

export const SUPPORTED_LOCALES = ["en", "fr", "de", "es"] as const;
export type Locale = (typeof SUPPORTED_LOCALES)[number];

/** The personal fields of an account, stored encrypted under its data key. */
export interface Profile {
  email: string;
  displayName: string;
  pronouns: string;
  customAttributes: Record<string, unknown>;
  pushTokens: Array<{ deviceId: string; platform: string; token: string; createdAt: number }>;
}

export interface TenantSettings {
  inviteOnly: boolean;
  manualActivation: boolean;
  passwordMinLength: number;
  sessionIdleTimeoutMs: number;
  sessionAbsoluteLifetimeMs: number;
  /** The passkeys' relying party id (a host name); "" → the host of linkBaseUrl, else of PUBLIC_URL (src/domain/passkeys.ts). */
  passkeyRpId: string;
  /** The origins passkey ceremonies may run on; empty → the origin of linkBaseUrl, else of PUBLIC_URL. */
  passkeyOrigins: string[];
  linkBaseUrl: string;
  defaultLocale: Locale;
  validateRequiresApiKey: boolean;
  /** Sign-in attempts per IP per 15 min (2× per hour, 4× per day). */
  signInPerIpLimit: number;
  /** Sign-in attempts per address per 15 min (2× per hour, 4× per day). */
  signInPerAccountLimit: number;
  /** Sign-ups per IP per hour. */
  signUpPerIpLimit: number;
  /** Code/link checks (reset, email change, verification) per IP per 15 min. */
  codeAttemptsPerIpLimit: number;
  /** Code checks per account per 15 min. */
  codeAttemptsPerAccountLimit: number;
  /** Messages sent to one address per hour (no mail bombing through us). */
  messagesPerAddressLimit: number;
  unverifiedRetentionMs: number;
  /** Messages delivered (or given up on) longer ago than this are deleted from the outbox. */
  deliveredMessageRetentionMs: number;
  /**
   * Audit events older than this are deleted — security events (sign-ins, sign-ups,
   * verifications, rate-limit hits) and admin events alike: the trail is one hash
   * chain per tenant, so retention removes its oldest events (a prefix) and keeps a
   * checkpoint that verification starts from.
   */
  auditEventRetentionMs: number;
  /**
   * The lowest role that must sign in with a second factor; 0: nobody. Such
   * accounts without a factor get AAL1 sessions (to enroll one), and admin
   * actions refuse them (STEP_UP_REQUIRED) below AAL2.
   */
  secondFactorMinRole: 0 | Role;
  /** The tenant's plans (managed by the plan RPCs, not UpdateTenant). */
  plans: Plan[];
  /** The plan a new account starts a trial of ("" for none). */
  trialPlan: string;
  /** When the trial starts: at sign-up, or once the address is verified. */
  trialStart: "sign_up" | "verification";
  /** Renewal reminders go this many days before a renewing subscription's period ends. */
  renewalReminderDays: number;
  /** How long a phone code works (default 5 min, at most 10). */
  phoneCodeLifetimeMs: number;
  /** The region national phone numbers are read in (ISO 3166-1 alpha-2, e.g. "FR"); "" reads only international ones. */
  phoneDefaultRegion: string;
  /** SMS the tenant sends per day, at most (they cost money); over it, code requests are refused. */
  smsDailyLimit: number;
  /** SMS code requests per IP per hour (2× per 4 hours, 4× per day). */
  smsPerIpLimit: number;
  /** Guest sign-ins (each a new account) per IP per hour (2× per 4 hours, 4× per day). */
  guestSignInPerIpLimit: number;
  /** Guest accounts never upgraded (no other identity added) are deleted this long after they were created. */
  guestRetentionMs: number;
}

export interface Tenant {
  id: string;
  name: string;
  settings: TenantSettings;
  createdAt: number;
}

export interface Account {
  id: string;
  tenantId: string;
  role: Role;
  state: AccountState;
  locale: Locale;
  emailVerified: boolean;
  profile: Profile;
  plan: string;
  /** The end of the current period (a trial's end, a paid period's end); null: none. */
  planExpiresAt: number | null;
  planStatus: SubscriptionStatus;
  /** Whether the subscription renews at period end (else it expires to the free plan). */
  planRenews: boolean;
  createdAt: number;
  updatedAt: number;
}

/**
 * How a session was authenticated (Kratos' authentication_methods): the proofs
 * it was opened with, in order. `method` names the proof; other modules add
 * theirs (second factors: "totp", "recovery_code"; external: "oidc").
 */
export const AuthMethod = {
  /** An email address and the account's password. */
  PASSWORD: "password",
  /** The link from a verification email (VerifyIdentity). */
  EMAIL_LINK: "email_link",
  /** A one-time code sent by SMS to a phone identity. */
  PHONE_CODE: "phone_code",
  /** A guest sign-in (a new anonymous account). */
  GUEST: "guest",
  /** A code of the account's authenticator app, as a second factor (src/domain/second-factors.ts). */
  TOTP: "totp",
  /** One of the account's recovery codes, as a second factor. */
  RECOVERY_CODE: "recovery_code",
  /** A passkey (WebAuthn) with user verification: alone, or as a second factor (src/domain/passkeys.ts). */
  PASSKEY: "passkey",
  /** An ID token of a social / OpenID Connect provider (the web or the native flow). */
  OIDC: "oidc",
} as const;

export interface AuthenticationMethod {
  method: string;
  /** The identity the proof was about; "" for a proof that is not about one (a second factor). */
  identityId: string;
  /** When the proof was completed. */
  at: number;
}

/** A live session as kept in the ephemeral store (compact: it is read on every request). */
export interface SessionRecord {
  sessionId: string;
  accountId: string;
  tenantId: string;
  role: Role;
  assurance: AssuranceLevel;
  createdAt: number;
  lastSeenAt: number;
  /** Idle expiry: lastSeenAt + idle timeout, capped by absoluteExpiresAt. */
  expiresAt: number;
  absoluteExpiresAt: number;
  /**
   * Where the session was opened — the client's IP address and user agent —
   * sealed under the account's data key (sealSessionClient in
   * src/domain/sessions.ts): opened only to list sessions, never to validate one.
   */
  client: string;
  /** The proofs the session was opened with, in order (at least one for a session issued since they were recorded). */
  methods: AuthenticationMethod[];
}

/** Purposes of single-use out-of-band tokens; a token only works for its own purpose. */
export type TokenPurpose =
  | "verify_email"
  | "reset_password"
  | "change_email"
  | "invitation"
  | "second_factor"
  | "social_state"
  | "passkey_registration"
  | "passkey_sign_in";

export interface OneTimeToken {
  purpose: TokenPurpose;
  tenantId: string;
  accountId: string;
  identityId: string;
  expiresAt: number;
  /** Purpose-specific values; anything personal in them is sealed under the account's data key. */
  data?: Record<string, string>;
}
