// `npm run bench -- --accounts N` (or BENCH_ACCOUNTS=N): the cost of the main
// RPCs at 1,000 accounts and at N, side by side. Accounts are seeded straight
// into MySQL — the rows `newEmailAccount` builds for a sign-up (a data key of
// their own wrapped by the service's key-encryption key, the profile and the
// address sealed under it, the address's blind index), written by multi-row
// INSERTs of thousands at a time — not through SignUp, which would take hours.
// They share one real argon2 hash of the bench password (a million hashes
// would take hours too), so any of them can sign in.
import argon2 from "argon2";
import type { Connection } from "mysql2/promise";
import { ARGON2_PARAMS } from "../src/crypto/passwords.ts";
import { createKeyring } from "../src/crypto/keyring.ts";
import { EMAIL_INDEX, newEmailAccount } from "../src/domain/accounts.ts";
import { AccountState, Role } from "../src/domain/types.ts";

/** Rows per INSERT statement (3 tables × this many rows per batch). */
const BATCH = 2000;

export interface Seeder {
  /** Accounts seeded so far. */
  readonly count: number;
  /** Seeds accounts until `count` reach `total`; returns the seconds it took. */
  seedTo(total: number): Promise<number>;
  /** The address of seeded account i (its password is the bench password). */
  email(i: number): string;
  /** Seeded account i's id (i < count). */
  accountId(i: number): string;
}

export async function createSeeder(options: {
  connections: Connection[];
  tenantId: string;
  kek: { id: string; key: Buffer };
  blindIndexKey: Buffer;
  password: string;
  runId: string;
  /** created_at of the oldest seeded account; later ones are 1 ms apart. */
  startAt: number;
  /** The stored hash of the password (default: argon2 with the service's parameters). */
  passwordHash?: string;
}): Promise<Seeder> {
  const keyring = createKeyring([options.kek], options.blindIndexKey);
  const passwordHash = options.passwordHash ?? (await argon2.hash(options.password, { ...ARGON2_PARAMS }));
  const ids: string[] = [];
  const email = (i: number) => `seed${i}.${options.runId}@example.test`;

  function rows(from: number, to: number) {
    const accounts: unknown[][] = [];
    const identities: unknown[][] = [];
    const keys: unknown[][] = [];
    for (let i = from; i < to; i++) {
      const address = email(i);
      const at = options.startAt + i;
      const { account, identity, wrappedKey } = newEmailAccount(keyring, {
        tenantId: options.tenantId,
        email: address,
        lookupHash: keyring.blindIndex(EMAIL_INDEX, address),
        passwordHash,
        role: Role.USER,
        state: AccountState.ACTIVE,
        locale: "en",
        verifiedAt: at,
        at,
      });
      ids[i] = account.id;
      accounts.push([
        account.id,
        account.tenantId,
        account.role,
        account.state,
        account.locale,
        1,
        account.profileSealed,
        account.passwordHash,
        account.plan,
        account.planExpiresAt,
        account.createdAt,
        account.updatedAt,
      ]);
      identities.push([
        identity.id,
        identity.tenantId,
        identity.accountId,
        identity.kind,
        identity.lookupHash,
        identity.valueSealed,
        identity.verifiedAt,
        identity.createdAt,
      ]);
      keys.push([account.id, account.tenantId, wrappedKey, at]);
    }
    return { accounts, identities, keys };
  }

  async function insert(connection: Connection, from: number, to: number) {
    const { accounts, identities, keys } = rows(from, to);
    await connection.query("INSERT INTO account_keys (account_id, tenant_id, wrapped_key, created_at) VALUES ?", [keys]);
    await connection.query("INSERT INTO identities (id, tenant_id, account_id, kind, lookup_hash, value, verified_at, created_at) VALUES ?", [identities]);
    await connection.query(
      "INSERT INTO accounts (id, tenant_id, role, state, locale, email_verified, profile, password_hash, plan, plan_expires_at, created_at, updated_at) VALUES ?",
      [accounts],
    );
  }

  let count = 0;
  return {
    get count() {
      return count;
    },
    email,
    accountId: (i) => ids[i]!,
    async seedTo(total) {
      const started = performance.now();
      let next = count;
      // One batch in flight per connection: building a batch (the crypto) overlaps the others' inserts.
      await Promise.all(
        options.connections.map(async (connection) => {
          while (next < total) {
            const from = next;
            const to = Math.min(total, from + BATCH);
            next = to;
            await insert(connection, from, to);
          }
        }),
      );
      count = Math.max(count, total);
      return (performance.now() - started) / 1000;
    },
  };
}

/**
 * A ListUsers page token pointing after `position`, made from one the service
 * issued for the same filters (the format of src/domain/admin-users.ts: only
 * the position changes), so a deep page is one call rather than thousands.
 */
export function listUsersTokenAfter(issued: string, position: { createdAt: number; id: string }): string {
  const fingerprint = Buffer.from(issued, "base64url").toString("latin1").split(".").pop();
  return Buffer.from(`u1.${position.createdAt}.${position.id}.${fingerprint}`).toString("base64url");
}
