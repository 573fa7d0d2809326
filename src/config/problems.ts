// Shared plumbing of the components' config modules: each collects every problem of its
// flags or env first, so that one error lists them all, naming the flag and the bad value.

/** A configuration the user gave is wrong; the CLI prints it and exits with code 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export class Problems {
  readonly list: string[] = [];

  add(problem: string): void {
    this.list.push(problem);
  }

  /** The trimmed value, or "" with a problem when it is missing or blank. */
  required(name: string, value: string | undefined): string {
    const trimmed = value?.trim() ?? "";
    if (trimmed === "") this.add(`${name} is required`);
    return trimmed;
  }

  /** A TCP port; 0 asks the OS for a free one (tests, benchmarks), and the log says which. */
  port(name: string, text: string): number {
    const port = Number(text);
    if (!/^\d+$/.test(text) || port > 65535) {
      this.add(`${name} ${JSON.stringify(text)} is not a port number (0-65535)`);
    }
    return port;
  }

  logLevel(name: string, text: string): string {
    if (!(LOG_LEVELS as readonly string[]).includes(text)) {
      this.add(`${name} ${JSON.stringify(text)} is not one of ${LOG_LEVELS.join(", ")}`);
    }
    return text;
  }

  /** Throws one ConfigError listing every problem, if there is any. */
  throwIfAny(prefix = ""): void {
    if (this.list.length > 0) throw new ConfigError(prefix + this.list.join("; "));
  }
}
