// Consents: what a person agreed to (or withdrew), for which policy version,
// when, and through which client. Every decision is a new row (the history is
// kept whole, as GDPR art. 7(1) asks a controller to be able to show consent);
// the current state of a purpose is its newest decision. The person records and
// reads their own (AccountService, and the sign-up form); admins read them
// (AdminService.ListUserConsents, audited in the service).
import { accountEvent, EventType } from "./events.ts";
import { assertNoViolations, invalidArgument, type FieldViolation } from "./errors.ts";
import { newId } from "./ids.ts";
import type { ConsentCursor, ConsentStore, StoredConsent } from "./ports/consents.ts";
import type { Random } from "./ports/random.ts";

/** Purposes every tenant knows; a tenant may use any other name of the same shape. */
export const WELL_KNOWN_PURPOSES = ["terms", "privacy_policy", "marketing", "analytics"] as const;

export const CONSENT_LIMITS = Object.freeze({
  /** Decisions one call (UpdateConsents, SignUp) may carry. */
  perCall: 20,
  purposeLength: 64,
  versionLength: 64,
  /** The client is the caller's user agent, cut to this many characters. */
  clientLength: 200,
  /** ListConsents / ListUserConsents return at most this many history entries (the newest); the export carries all. */
  listedHistory: 1000,
});

const PURPOSE_SHAPE = /^[a-z0-9_.-]{1,64}$/;
/** Printable ASCII without spaces: "2030-01", "v2.1", "tos:7". */
const VERSION_SHAPE = /^[\x21-\x7E]{1,64}$/;

/** One decision as the person gives it. */
export interface ConsentGrant {
  purpose: string;
  version: string;
  granted: boolean;
}

/** One decision as recorded. */
export interface Consent extends ConsentGrant {
  recordedAt: number;
  client: string;
}

export interface Consents {
  /**
   * Records the decisions (all or none) and returns the current state. The
   * grants are checked first: invalid_argument naming "consents[i].purpose" etc.
   * `client` is the caller's user agent (see consentClient).
   */
  record(account: { tenantId: string; accountId: string }, grants: readonly ConsentGrant[], client: string): Promise<Consent[]>;
  /** The newest decision per purpose, by purpose name. */
  current(tenantId: string, accountId: string): Promise<Consent[]>;
  /** The newest CONSENT_LIMITS.listedHistory decisions, newest first. */
  history(tenantId: string, accountId: string): Promise<Consent[]>;
  /** Every decision, newest first, in pages of at most `pageSize` (the export reads it so; memory stays flat). */
  historyPages(tenantId: string, accountId: string, pageSize: number): AsyncGenerator<Consent[]>;
}

/**
 * Checks the decisions of one call, naming every offending field
 * (`${field}[i].purpose`, `${field}[i].version`). Purposes are "terms",
 * "privacy_policy", "marketing", "analytics" or a tenant's own name of the same
 * shape ([a-z0-9_.-], at most 64); versions are 1–64 printable ASCII characters
 * without spaces; a purpose is decided at most once per call; at most
 * CONSENT_LIMITS.perCall decisions.
 */
export function checkConsentGrants(field: string, grants: readonly ConsentGrant[]): ConsentGrant[] {
  if (grants.length > CONSENT_LIMITS.perCall) throw invalidArgument(field, `must hold at most ${CONSENT_LIMITS.perCall} decisions`);
  const violations: FieldViolation[] = [];
  const seen = new Set<string>();
  grants.forEach((grant, i) => {
    const at = `${field}[${i}]`;
    if (grant.purpose === "") violations.push({ field: `${at}.purpose`, description: "is required" });
    else if (!PURPOSE_SHAPE.test(grant.purpose)) {
      violations.push({
        field: `${at}.purpose`,
        description: `must be ${WELL_KNOWN_PURPOSES.map((p) => `"${p}"`).join(", ")} or a name of at most ${CONSENT_LIMITS.purposeLength} characters from a-z, 0-9, "_", "." and "-"`,
      });
    } else if (seen.has(grant.purpose)) violations.push({ field: `${at}.purpose`, description: "is decided twice in this call" });
    seen.add(grant.purpose);
    if (grant.version === "") violations.push({ field: `${at}.version`, description: "is required (the version of the policy decided on)" });
    else if (!VERSION_SHAPE.test(grant.version)) {
      violations.push({ field: `${at}.version`, description: `must be at most ${CONSENT_LIMITS.versionLength} printable ASCII characters without spaces` });
    }
  });
  assertNoViolations(violations);
  return grants.map(({ purpose, version, granted }) => ({ purpose, version, granted }));
}

/** How a decision's client is named: the caller's user agent (the application), well-formed and cut to fit. */
export function consentClient(userAgent: string): string {
  // Code points; a lone surrogate (no database stores one) becomes U+FFFD.
  return Array.from(userAgent, (c) => (c.length === 1 && c >= "\uD800" && c <= "\uDFFF" ? "\uFFFD" : c))
    .slice(0, CONSENT_LIMITS.clientLength)
    .join("");
}

/** The rows recording checked decisions for an account at `at` (for ConsentStore.append or AccountStore.createAccount). */
export function consentRows(
  account: { tenantId: string; accountId: string },
  grants: readonly ConsentGrant[],
  client: string,
  at: number,
  random?: Random,
): StoredConsent[] {
  return grants.map((g) => ({
    id: newId(at, random),
    tenantId: account.tenantId,
    accountId: account.accountId,
    purpose: g.purpose,
    version: g.version,
    granted: g.granted,
    client,
    recordedAt: at,
  }));
}

function toConsent(row: StoredConsent): Consent {
  return { purpose: row.purpose, version: row.version, granted: row.granted, recordedAt: row.recordedAt, client: row.client };
}

export function createConsents(deps: { store: ConsentStore; now: () => number; random?: Random }): Consents {
  const { store } = deps;
  return {
    async record(account, grants, client) {
      const checked = checkConsentGrants("consents", grants);
      if (checked.length === 0) throw invalidArgument("consents", "must hold at least one decision");
      const at = deps.now();
      const about = { tenantId: account.tenantId, id: account.accountId };
      const events = checked.map((g) => accountEvent(EventType.CONSENT_CHANGED, about, at, { purpose: g.purpose, granted: g.granted }, deps.random));
      await store.append(consentRows(account, checked, consentClient(client), at, deps.random), events);
      return (await store.current(account.tenantId, account.accountId)).map(toConsent);
    },

    async current(tenantId, accountId) {
      return (await store.current(tenantId, accountId)).map(toConsent);
    },

    async history(tenantId, accountId) {
      return (await store.history({ tenantId, accountId, limit: CONSENT_LIMITS.listedHistory })).map(toConsent);
    },

    async *historyPages(tenantId, accountId, pageSize) {
      let before: ConsentCursor | undefined;
      for (;;) {
        const page = await store.history({ tenantId, accountId, limit: pageSize, ...(before ? { before } : {}) });
        if (page.length > 0) yield page.map(toConsent);
        const last = page[page.length - 1];
        if (!last || page.length < pageSize) return;
        before = { recordedAt: last.recordedAt, id: last.id };
      }
    },
  };
}
