// What a person's authenticator app does: the code of the current step (or a
// neighbouring one) for the secret StartTotpEnrollment returned.
import { totpCode, totpStep } from "../../src/crypto/totp.ts";

/** The code of the step `offset` steps from now (an app whose clock is ahead or behind). */
export function appCode(secret: string, offset = 0, at = Date.now()): string {
  return totpCode(secret, totpStep(at) + offset);
}
