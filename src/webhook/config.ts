// The webhook's configuration: every flag is parsed and checked here, and an error names
// the flag and the bad value.
import { posix } from "node:path";
import { DEFAULT_STATE_DIR } from "../names.ts";
import type { PullPolicy } from "./sidecar.ts";

export interface WebhookConfig {
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  sidecarImage: string;
  sidecarImagePullPolicy?: PullPolicy;
  handlerUrl: string;
  /** PEM bundle for CHA_HANDLER_CA; unset means the sidecars use the system trust store. */
  handlerCaFile?: string;
  stateDir: string;
  logLevel: string;
}

/** The flags as commander hands them over: strings, or undefined when not given. */
export interface WebhookFlags {
  port?: string;
  tlsCert?: string;
  tlsKey?: string;
  sidecarImage?: string;
  sidecarImagePullPolicy?: string;
  handlerUrl?: string;
  handlerCaFile?: string;
  stateDir?: string;
  logLevel?: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const PULL_POLICIES: readonly PullPolicy[] = ["Always", "IfNotPresent", "Never"];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Parses the flags; throws a ConfigError that lists every bad flag. */
export function parseWebhookConfig(flags: WebhookFlags): WebhookConfig {
  const problems: string[] = [];
  const required = (flag: string, value: string | undefined): string => {
    if (value === undefined || value.trim() === "") problems.push(`${flag} is required`);
    return value?.trim() ?? "";
  };

  const portText = flags.port ?? "8443";
  const port = Number(portText);
  // Port 0 asks the OS for a free port (tests, benchmarks); the log says which one.
  if (!/^\d+$/.test(portText) || port > 65535) {
    problems.push(`--port ${JSON.stringify(portText)} is not a port number (0-65535)`);
  }

  const tlsCertFile = required("--tls-cert", flags.tlsCert);
  const tlsKeyFile = required("--tls-key", flags.tlsKey);

  const sidecarImage = required("--sidecar-image", flags.sidecarImage);
  if (/\s/.test(sidecarImage))
    problems.push(`--sidecar-image ${JSON.stringify(sidecarImage)} contains whitespace`);

  const pullPolicy = flags.sidecarImagePullPolicy;
  if (pullPolicy !== undefined && !PULL_POLICIES.includes(pullPolicy as PullPolicy)) {
    problems.push(
      `--sidecar-image-pull-policy ${JSON.stringify(pullPolicy)} is not one of ${PULL_POLICIES.join(", ")}`,
    );
  }

  const handlerUrl = required("--handler-url", flags.handlerUrl);
  if (handlerUrl !== "") {
    const problem = handlerUrlProblem(handlerUrl);
    if (problem) problems.push(`--handler-url ${JSON.stringify(handlerUrl)} ${problem}`);
  }

  const stateDirText = flags.stateDir ?? DEFAULT_STATE_DIR;
  const stateDir = posix.normalize(stateDirText).replace(/(.)\/$/, "$1");
  if (!posix.isAbsolute(stateDirText) || stateDir === "/") {
    problems.push(`--state-dir ${JSON.stringify(stateDirText)} is not an absolute directory path below /`);
  }

  const logLevel = flags.logLevel ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`--log-level ${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(", ")}`);
  }

  if (flags.handlerCaFile !== undefined && flags.handlerCaFile.trim() === "") {
    problems.push("--handler-ca-file is empty; leave it out to let sidecars use the system trust store");
  }

  if (problems.length > 0) throw new ConfigError(problems.join("; "));

  const config: WebhookConfig = {
    port,
    tlsCertFile,
    tlsKeyFile,
    sidecarImage,
    handlerUrl,
    stateDir,
    logLevel,
  };
  if (pullPolicy !== undefined) config.sidecarImagePullPolicy = pullPolicy as PullPolicy;
  if (flags.handlerCaFile !== undefined) config.handlerCaFile = flags.handlerCaFile;
  return config;
}

/** Sidecars send their token to this URL, so it must be https and carry nothing else. */
function handlerUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "is not a URL";
  }
  if (url.protocol !== "https:") return "must be an https URL (sidecars send their token there)";
  if (url.username || url.password) return "must not carry credentials";
  if (url.search || url.hash) return "must not carry a query or fragment";
  return undefined;
}
