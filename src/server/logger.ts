// Structured logs: JSON in production, one readable line per record in
// development on a terminal. Secrets and personal data are redacted at the
// paths where they can appear: names that only ever hold a secret (password,
// token, email, …) at any of the first three levels, and the ambiguous names
// (a mail's `to`, a Redis command's arguments) only where they are secret, so
// an exit code or a driver's error `code` stays readable.
import { pino, type DestinationStream, type Logger } from "pino";
import type { Config } from "../config.ts";

/** Field names that hold nothing but a secret or personal data wherever they appear. */
export const SECRET_KEYS = [
  "password",
  "currentPassword",
  "newPassword",
  "token",
  "sessionToken",
  "secret",
  "authorization",
  "cookie",
  "email",
  "newEmail",
  "phone",
  "phoneNumber",
  "phone_number",
  "msisdn",
  "displayName",
];

/** Secrets under a name that elsewhere is harmless: redacted at these exact paths only. */
export const SECRET_PATHS = [
  "mail.to", // the development mail transport's recipient (src/server/wiring.ts)
  "sms.to", // the development SMS sender's recipient (src/server/wiring.ts)
  "err.command.args", // ioredis errors carry the command's keys and values
];

export type LogFormat = "json" | "pretty";

/** LOG_FORMAT when set; otherwise pretty only for a person watching a development server. */
export function chooseLogFormat(config: Pick<Config, "logFormat" | "development">, isTTY: boolean): LogFormat {
  return config.logFormat ?? (config.development && isTTY ? "pretty" : "json");
}

export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = "json"): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    redact: {
      paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`), ...SECRET_KEYS.map((k) => `*.*.${k}`), ...SECRET_PATHS],
      censor: "[redacted]",
    },
  };
  if (format === "pretty") {
    const out = destination ?? process.stdout;
    return pino(options, { write: (line: string) => void out.write(prettyLine(line)) });
  }
  return destination ? pino(options, destination) : pino(options);
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** One pino JSON record as `HH:MM:SS.mmm LEVEL message key=value …`, an error's stack indented below. */
export function prettyLine(json: string): string {
  const { level, time, msg, pid: _pid, hostname: _hostname, err, ...fields } = JSON.parse(json) as Record<string, unknown>;
  const parts = [new Date(Number(time)).toISOString().slice(11, 23), (LEVELS[Number(level)] ?? String(level)).padEnd(5), String(msg ?? "")];
  for (const [key, value] of Object.entries(fields)) {
    parts.push(`${key}=${typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
  }
  let text = parts.join(" ");
  if (err && typeof err === "object") {
    const { message, stack, type: _type, ...rest } = err as Record<string, unknown>;
    text += ` err=${JSON.stringify(message)}${Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : ""}`;
    if (typeof stack === "string")
      text += `\n    ${stack
        .split("\n")
        .slice(1)
        .map((l) => l.trim())
        .join("\n    ")}`;
  }
  return `${text}\n`;
}

export type { Logger };
