// Structured logs. Secrets and personal data are redacted by key wherever they
// appear, so a careless log line cannot leak a password, token or address.
import { pino, type DestinationStream, type Logger } from "pino";

export const REDACTED_KEYS = [
  "password", "currentPassword", "newPassword", "token", "sessionToken", "secret", "code",
  "authorization", "email", "newEmail", "to", "phone", "displayName", "cookie",
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: [...REDACTED_KEYS, ...REDACTED_KEYS.map((k) => `*.${k}`), ...REDACTED_KEYS.map((k) => `*.*.${k}`), 'headers["authorization"]'],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
