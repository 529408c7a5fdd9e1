// The ConsentStore contract (src/domain/ports/) on every SQL backend:
// decisions are appended all-or-none, read back newest first with keyset
// pages, the current state is the newest decision per purpose, and nothing of
// another account or tenant ever shows. Also: createAccount records the
// sign-up form's consents in its own transaction (none when it fails).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring } from "../../src/crypto/keyring.ts";
import { newEmailAccount } from "../../src/domain/accounts.ts";
import { newId } from "../../src/domain/ids.ts";
import { DuplicateIdentityError } from "../../src/domain/ports/accounts.ts";
import type { StoredConsent } from "../../src/domain/ports/consents.ts";
import { AccountState, Role } from "../../src/domain/types.ts";
import { BACKENDS } from "../support/backends.ts";
import { openDurable, type DurableHarness } from "../support/durable.ts";

const T0 = Date.UTC(2030, 0, 1);
const keyring = createKeyring([{ id: "k1", key: randomBytes(32) }], randomBytes(32));

function consent(accountId: string, overrides: Partial<StoredConsent> = {}): StoredConsent {
  const recordedAt = overrides.recordedAt ?? T0;
  return {
    id: newId(recordedAt),
    tenantId: "t-consents",
    accountId,
    purpose: "terms",
    version: "2030-01",
    granted: true,
    client: "test-agent/1.0",
    recordedAt,
    ...overrides,
  };
}

describe.each(BACKENDS)("ConsentStore contract: %s", (backend) => {
  let h: DurableHarness;
  beforeAll(async () => {
    h = await openDurable(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("append() stores every field as given; history() returns them newest first", async () => {
    const accountId = newId(T0);
    const older = consent(accountId, {
      purpose: "marketing",
      granted: false,
      version: "v1",
      client: "Mozilla/5.0 (X11; Linux x86_64) Ünïcode",
      recordedAt: T0 + 1,
    });
    const newer = consent(accountId, { purpose: "terms", recordedAt: T0 + 2 });
    await h.stores.consents.append([older, newer]);
    expect(await h.stores.consents.history({ tenantId: "t-consents", accountId, limit: 10 })).toEqual([newer, older]);
    const raw = await h.raw.selectFrom("consents").selectAll().where("id", "=", older.id).executeTakeFirstOrThrow();
    expect(Number(raw.granted)).toBe(0);
    expect(await h.stores.consents.append([])).toBeUndefined();
  });

  it("append() writes all or none: a batch with a repeated id leaves nothing", async () => {
    const accountId = newId(T0);
    const a = consent(accountId);
    await expect(h.stores.consents.append([a, { ...consent(accountId, { purpose: "analytics" }), id: a.id }])).rejects.toThrow();
    expect(await h.stores.consents.history({ tenantId: "t-consents", accountId, limit: 10 })).toEqual([]);
  });

  it("history() pages by (recordedAt, id) without skipping or repeating, ties included", async () => {
    const accountId = newId(T0);
    const rows: StoredConsent[] = [];
    for (let i = 0; i < 7; i++) rows.push(consent(accountId, { purpose: `p${i}`, recordedAt: T0 + Math.floor(i / 3) })); // three share a time
    await h.stores.consents.append([...rows].reverse());
    const expected = [...rows].sort((x, y) => y.recordedAt - x.recordedAt || (y.id < x.id ? -1 : 1));
    const seen: StoredConsent[] = [];
    let before: { recordedAt: number; id: string } | undefined;
    for (;;) {
      const page = await h.stores.consents.history({ tenantId: "t-consents", accountId, limit: 2, ...(before ? { before } : {}) });
      seen.push(...page);
      if (page.length < 2) break;
      const last = page[page.length - 1]!;
      before = { recordedAt: last.recordedAt, id: last.id };
    }
    expect(seen).toEqual(expected);
  });

  it("current() is the newest decision per purpose, sorted by purpose", async () => {
    const accountId = newId(T0);
    const termsV1 = consent(accountId, { purpose: "terms", version: "v1", recordedAt: T0 + 1 });
    const termsV2 = consent(accountId, { purpose: "terms", version: "v2", recordedAt: T0 + 5 });
    const marketingOn = consent(accountId, { purpose: "marketing", granted: true, recordedAt: T0 + 2 });
    const marketingOff = consent(accountId, { purpose: "marketing", granted: false, recordedAt: T0 + 3 });
    const custom = consent(accountId, { purpose: "shop.newsletter-2", recordedAt: T0 + 4 });
    await h.stores.consents.append([termsV2, marketingOn]);
    await h.stores.consents.append([termsV1, custom, marketingOff]);
    expect(await h.stores.consents.current("t-consents", accountId)).toEqual([marketingOff, custom, termsV2]);
    expect(await h.stores.consents.current("t-consents", newId(T0))).toEqual([]);
  });

  it("current() breaks a tie in time by the larger id", async () => {
    const accountId = newId(T0);
    const [x, y] = [consent(accountId, { version: "x" }), consent(accountId, { version: "y" })].sort((a, b) => (a.id < b.id ? -1 : 1));
    await h.stores.consents.append([y!, x!]);
    expect(await h.stores.consents.current("t-consents", accountId)).toEqual([y]);
  });

  it("reads only the account's own rows, in its own tenant", async () => {
    const me = newId(T0);
    const other = newId(T0);
    const mine = consent(me);
    await h.stores.consents.append([mine, consent(other, { purpose: "analytics" }), consent(me, { tenantId: "t-elsewhere", purpose: "marketing" })]);
    expect(await h.stores.consents.history({ tenantId: "t-consents", accountId: me, limit: 10 })).toEqual([mine]);
    expect(await h.stores.consents.current("t-consents", me)).toEqual([mine]);
  });

  it("keeps times beyond 2^32 ms exactly", async () => {
    const accountId = newId(T0);
    const row = consent(accountId, { recordedAt: 2 ** 41 + 7 });
    await h.stores.consents.append([row]);
    expect((await h.stores.consents.current("t-consents", accountId))[0]?.recordedAt).toBe(2 ** 41 + 7);
  });

  it("createAccount() records the sign-up consents in its transaction; a duplicate identity records none", async () => {
    const lookupHash = randomBytes(32).toString("hex");
    const rows = () =>
      newEmailAccount(keyring, {
        tenantId: "t-consents",
        email: "x@example.test",
        lookupHash,
        passwordHash: null,
        role: Role.USER,
        state: AccountState.PENDING_VERIFICATION,
        locale: "en",
        verifiedAt: null,
        at: T0,
      });
    const first = rows();
    const given = [consent(first.account.id, { purpose: "terms" }), consent(first.account.id, { purpose: "privacy_policy" })];
    await h.stores.accounts.createAccount({ account: first.account, wrappedKey: first.wrappedKey, identity: first.identity, messages: [], consents: given });
    expect(await h.stores.consents.current("t-consents", first.account.id)).toEqual([given[1], given[0]]);

    const second = rows();
    const refused = await h.stores.accounts
      .createAccount({
        account: second.account,
        wrappedKey: second.wrappedKey,
        identity: second.identity,
        messages: [],
        consents: [consent(second.account.id)],
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DuplicateIdentityError);
    expect(await h.stores.consents.history({ tenantId: "t-consents", accountId: second.account.id, limit: 10 })).toEqual([]);
  });
});
