import { systemRandom } from "../crypto/random.ts";
import type { Random } from "./ports/random.ts";

/** A UUIDv7: time-ordered, so primary-key inserts stay append-only in B-trees. */
export function newId(now: number = Date.now(), random: Random = systemRandom): string {
  const bytes = Buffer.from(random.bytes(16));
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isId(value: string): boolean {
  return UUID_SHAPE.test(value);
}
