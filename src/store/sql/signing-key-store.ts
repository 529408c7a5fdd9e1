// The SigningKeyStore (src/domain/ports/signing-keys.ts) over Kysely.
import type { Kysely, Selectable } from "kysely";
import type { SigningKeyStore, StoredSigningKey } from "../../domain/ports/signing-keys.ts";
import type { Database, SigningKeysTable } from "./schema.ts";

function toKey(row: Selectable<SigningKeysTable>): StoredSigningKey {
  return {
    kid: row.kid,
    algorithm: row.algorithm,
    publicJwk: row.public_jwk,
    sealedPrivateKey: row.sealed_private_key,
    createdAt: Number(row.created_at),
    activeFrom: Number(row.active_from),
    retireAt: row.retire_at === null ? null : Number(row.retire_at),
  };
}

export function createSqlSigningKeyStore(db: Kysely<Database>): SigningKeyStore {
  return {
    async list() {
      return (await db.selectFrom("signing_keys").selectAll().orderBy("active_from").orderBy("kid").execute()).map(toKey);
    },
    async rotateTo(key) {
      await db.transaction().execute(async (trx) => {
        await trx.updateTable("signing_keys").set({ retire_at: key.activeFrom }).where("retire_at", "is", null).execute();
        await trx
          .insertInto("signing_keys")
          .values({
            kid: key.kid,
            algorithm: key.algorithm,
            public_jwk: key.publicJwk,
            sealed_private_key: key.sealedPrivateKey,
            created_at: key.createdAt,
            active_from: key.activeFrom,
            retire_at: key.retireAt,
          })
          .execute();
      });
    },
    async purgeRetired(before) {
      const result = await db.deleteFrom("signing_keys").where("retire_at", "is not", null).where("retire_at", "<", before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
