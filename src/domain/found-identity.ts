// What flows share about an identity found by its address, and where their
// links point: apart from identity.ts so the flows that identity.ts itself
// uses (address-requests.ts) need not import it.
import type { StoredAccount, StoredIdentity } from "./ports/accounts.ts";
import type { Tenant } from "./types.ts";

/** An identity found by its lookup, with its account and wrapped data key. */
export interface FoundIdentity {
  identity: StoredIdentity;
  account: StoredAccount;
  wrappedKey: string;
}

/** The base of the links in a tenant's messages: its link base URL, else the hosted pages at PUBLIC_URL/ui (docs/hosted-pages.md). */
export function linkBase(tenant: Tenant, publicUrl: string): string {
  return tenant.settings.linkBaseUrl ? tenant.settings.linkBaseUrl.replace(/\/+$/, "") : `${publicUrl.replace(/\/+$/, "")}/ui`;
}
