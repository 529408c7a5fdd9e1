// Tenant storage. Reads (the caches' loader) apart from administration writes.
import type { Tenant, TenantSettings } from "../types.ts";

/** Reading tenants (see ./errors.ts for the errors every method may throw). */
export interface TenantReader {
  /** The tenant, or undefined. */
  get(id: string): Promise<Tenant | undefined>;
  /** Up to `limit` tenants in id order, starting after `afterId` when given (keyset pagination). */
  list(input: { afterId?: string; limit: number }): Promise<Tenant[]>;
}

/** Creating and changing tenants: the super admin's and bootstrap's privilege. */
export interface TenantWriter {
  /** Creates the tenant if no tenant has its id; never overwrites, never throws on an existing id. */
  ensure(tenant: Tenant): Promise<void>;
  /** Creates the tenant; false, writing nothing, when a tenant has its id (never throws already_exists). */
  create(tenant: Tenant): Promise<boolean>;
  /**
   * Reads the tenant, applies `change` and writes its result only if nobody
   * wrote the tenant in between (compare-and-set; re-read and retried on a
   * conflict), so concurrent updates never lose one another. Returns the tenant
   * as written; undefined when it does not exist. An error thrown by `change`
   * propagates, writing nothing.
   */
  update(id: string, change: (current: Tenant) => { name: string; settings: TenantSettings }): Promise<Tenant | undefined>;
}

export interface TenantStore extends TenantReader, TenantWriter {}
