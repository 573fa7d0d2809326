import { pino, type Logger } from "pino";

/** JSON logs on stdout. LOG_LEVEL overrides the level (default info). */
export function createLogger(component: string): Logger {
  return pino({
    level: process.env["LOG_LEVEL"] ?? "info",
    base: { component },
    // Never log a token or a state file, whichever field it ends up in.
    redact: {
      paths: ["token", "*.token", "authorization", "*.authorization", "headers.authorization"],
      censor: "[redacted]",
    },
  });
}

export type { Logger };
