// Rotation of the key-encryption key (KEK), without downtime. KEY_ENCRYPTION_KEYS
// lists several KEKs: the first wraps new data keys, every one unwraps. After
// the new KEK is put first on every instance, a rotation rewraps each stored data
// key under it, batch by batch. Data keys themselves never change, so nothing
// sealed under them is touched, and reads go on during the rotation: a row holds
// either the old or the new wrapping, both readable. Each rewrap is a
// compare-and-set on the stored wrapping, so a concurrent sign-up, erasure or
// second rotation is never overwritten (an erased key stays erased). Once no key
// is wrapped by an old KEK, the old KEK can be removed from the configuration.
// The blind-index key (BLIND_INDEX_KEY) is another key and is not rotated here.
import type { Keyring } from "../crypto/keyring.ts";
import type { KeyReader, KeyWriter } from "./ports/keys.ts";
import type { SocialProviderStore } from "./ports/social-providers.ts";
import { socialProviderKeyOwner } from "./social-providers.ts";

export interface RotationProgress {
  /** Keys read so far. */
  scanned: number;
  /** Keys rewrapped under the active KEK by this run. */
  rewrapped: number;
  /** Keys that changed under us (erased, or rewrapped by someone else) and were left as they are. */
  skipped: number;
  /** Keys that could not be unwrapped (a KEK missing from the configuration): left as they are. */
  failed: string[];
  /** The last account id handled: resume after it. */
  lastAccountId: string;
}

export interface RotationOptions {
  /** Keys per batch (default 200). */
  batchSize?: number;
  /** Resume after this account id ("" or absent: from the start). */
  afterAccountId?: string;
  onBatch?: (progress: RotationProgress) => void;
}

/** One pass over the key store: every key not yet under the active KEK is rewrapped under it. */
export async function rotateDataKeys(
  deps: { keys: Pick<KeyReader, "list"> & Pick<KeyWriter, "replace">; keyring: Keyring },
  options: RotationOptions = {},
): Promise<RotationProgress> {
  const batchSize = options.batchSize ?? 200;
  const progress: RotationProgress = { scanned: 0, rewrapped: 0, skipped: 0, failed: [], lastAccountId: options.afterAccountId ?? "" };
  for (;;) {
    const batch = await deps.keys.list({ afterAccountId: progress.lastAccountId, limit: batchSize });
    for (const { accountId, wrappedKey } of batch) {
      progress.scanned++;
      let rewrapped: string;
      try {
        rewrapped = deps.keyring.rewrapDataKey(accountId, wrappedKey);
      } catch {
        progress.failed.push(accountId);
        continue;
      }
      if (rewrapped === wrappedKey) continue;
      if (await deps.keys.replace({ accountId, expected: wrappedKey, wrappedKey: rewrapped })) progress.rewrapped++;
      else progress.skipped++;
    }
    if (batch.length > 0) progress.lastAccountId = batch[batch.length - 1]!.accountId;
    options.onBatch?.({ ...progress, failed: [...progress.failed] });
    if (batch.length < batchSize) return progress;
  }
}

/** How many stored keys are not wrapped by the active KEK (a full read of the key store, in batches). */
export async function countStaleKeys(deps: { keys: Pick<KeyReader, "list">; keyring: Keyring }, batchSize = 1000): Promise<number> {
  let stale = 0;
  let afterAccountId = "";
  for (;;) {
    const batch = await deps.keys.list({ afterAccountId, limit: batchSize });
    stale += batch.filter((k) => !k.wrappedKey.startsWith(`${deps.keyring.activeKekId}.`)).length;
    if (batch.length < batchSize) return stale;
    afterAccountId = batch[batch.length - 1]!.accountId;
  }
}

/**
 * The same rotation for the social sign-in providers' data keys (their secrets are
 * sealed under a key of their own, src/domain/social-providers.ts): each wrapped
 * key not under the active KEK is rewrapped, by compare-and-set. Returns how many
 * were read, rewrapped, changed meanwhile, and the ids that could not be unwrapped.
 */
export async function rotateSocialProviderKeys(
  deps: { providers: Pick<SocialProviderStore, "listKeys" | "replaceKey">; keyring: Keyring },
  batchSize = 200,
): Promise<{ scanned: number; rewrapped: number; skipped: number; failed: string[]; stale: number }> {
  const progress = { scanned: 0, rewrapped: 0, skipped: 0, failed: [] as string[], stale: 0 };
  let afterId = "";
  for (;;) {
    const batch = await deps.providers.listKeys({ afterId, limit: batchSize });
    for (const { id, wrappedKey } of batch) {
      progress.scanned++;
      let rewrapped: string;
      try {
        rewrapped = deps.keyring.rewrapDataKey(socialProviderKeyOwner(id), wrappedKey);
      } catch {
        progress.failed.push(id);
        continue;
      }
      if (rewrapped === wrappedKey) continue;
      if (await deps.providers.replaceKey({ id, expected: wrappedKey, wrappedKey: rewrapped })) progress.rewrapped++;
      else progress.skipped++;
    }
    if (batch.length < batchSize) break;
    afterId = batch[batch.length - 1]!.id;
  }
  // What is still under an old KEK afterwards (a concurrent change, or unreadable).
  afterId = "";
  for (;;) {
    const batch = await deps.providers.listKeys({ afterId, limit: 1000 });
    progress.stale += batch.filter((k) => !k.wrappedKey.startsWith(`${deps.keyring.activeKekId}.`)).length;
    if (batch.length < 1000) return progress;
    afterId = batch[batch.length - 1]!.id;
  }
}
