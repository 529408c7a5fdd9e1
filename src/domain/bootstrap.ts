// The platform's first super admin, created from the command line
// (`npm run admin -- create-super-admin`), idempotently:
// - no account has the address in the default tenant → a new SUPER_ADMIN
//   account, verified and active, with the given password;
// - a super admin has it → nothing changes ("exists");
// - another account has it → refused, unless `promote` is set: then that
//   account becomes SUPER_ADMIN, verified and active, its password replaced by
//   the given one (whoever signed up with the address before may know the old
//   one) and its sessions ended.
import type { Keyring } from "../crypto/keyring.ts";
import type { PasswordHasher } from "../crypto/passwords.ts";
import { EMAIL_INDEX, newEmailAccount } from "./accounts.ts";
import { DomainError } from "./errors.ts";
import { type AccountReader, type AccountWriter, DuplicateIdentityError } from "./ports/accounts.ts";
import type { Random } from "./ports/random.ts";
import type { Revocations } from "./revocations.ts";
import { DEFAULT_TENANT_ID, type Tenants } from "./tenants.ts";
import { AccountState, IdentityKind, Role } from "./types.ts";
import { checkNewPassword, normalizeEmail } from "./validation.ts";

export type SuperAdminOutcome = "created" | "exists" | "promoted";

export interface Bootstrap {
  /** See the file comment. failed_precondition ACCOUNT_EXISTS when another account has the address and promote is off. */
  createSuperAdmin(input: { email: string; password: string; promote: boolean }): Promise<{ accountId: string; outcome: SuperAdminOutcome }>;
}

export interface BootstrapDeps {
  accounts: Pick<AccountReader, "findByIdentity"> & Pick<AccountWriter, "createAccount" | "setPasswordHash" | "markIdentityVerified" | "setRole">;
  tenants: Pick<Tenants, "get">;
  keyring: Keyring;
  passwords: PasswordHasher;
  revocations: Pick<Revocations, "settle">;
  now: () => number;
  random: Random;
}

export function createBootstrap(deps: BootstrapDeps): Bootstrap {
  const { accounts, keyring, now } = deps;
  return {
    async createSuperAdmin({ email: rawEmail, password: rawPassword, promote }) {
      const tenant = await deps.tenants.get(DEFAULT_TENANT_ID);
      const email = normalizeEmail("email", rawEmail);
      const lookupHash = keyring.blindIndex(EMAIL_INDEX, email);
      const found = await accounts.findByIdentity(DEFAULT_TENANT_ID, IdentityKind.EMAIL, lookupHash);
      if (found?.account.role === Role.SUPER_ADMIN) return { accountId: found.account.id, outcome: "exists" };
      if (found && !promote) {
        throw new DomainError(
          "failed_precondition",
          "ACCOUNT_EXISTS",
          "an account with this email exists and is not a super admin; pass --promote to make it one (its password is replaced)",
        );
      }
      const password = checkNewPassword("password", rawPassword, tenant.settings.passwordMinLength, [email]);
      const passwordHash = await deps.passwords.hash(password);
      const at = now();

      if (found) {
        const accountId = found.account.id;
        await accounts.setPasswordHash(accountId, passwordHash, at, { reason: "promoted" });
        await deps.revocations.settle(DEFAULT_TENANT_ID, accountId);
        await accounts.markIdentityVerified({ identityId: found.identity.id, accountId, at, state: AccountState.ACTIVE });
        // Last: until the role is set, running the command again takes this same path.
        await accounts.setRole({ tenantId: DEFAULT_TENANT_ID, accountId, role: Role.SUPER_ADMIN, at });
        return { accountId, outcome: "promoted" };
      }

      const { dataKey: _, ...rows } = newEmailAccount(keyring, {
        tenantId: DEFAULT_TENANT_ID,
        email,
        lookupHash,
        passwordHash,
        role: Role.SUPER_ADMIN,
        state: AccountState.ACTIVE,
        locale: tenant.settings.defaultLocale,
        verifiedAt: at,
        at,
        random: deps.random,
      });
      try {
        await accounts.createAccount({ ...rows, messages: [] });
        return { accountId: rows.account.id, outcome: "created" };
      } catch (error) {
        if (!(error instanceof DuplicateIdentityError)) throw error;
        // Someone took the address meanwhile (another run of this command, or a sign-up): decide again.
        return this.createSuperAdmin({ email: rawEmail, password: rawPassword, promote });
      }
    },
  };
}
