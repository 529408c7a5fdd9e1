// The production source of randomness for the domain's Random port: node:crypto's CSPRNG.
import { randomBytes } from "node:crypto";
import type { Random } from "../domain/ports/random.ts";

export const systemRandom: Random = { bytes: (length) => randomBytes(length) };
