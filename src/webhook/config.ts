// The webhook's configuration: every flag is parsed and checked here, and an error names
// the flag and the bad value.
import { posix } from "node:path";
import { DEFAULT_STATE_DIR } from "../names.ts";
import { SIDECAR_PROBES, type PullPolicy, type SidecarProbes } from "./sidecar.ts";
import { ConfigError, Problems } from "../config/problems.ts";

export { ConfigError };

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
  sidecarProbes: SidecarProbes;
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
  sidecarProbes?: string;
  logLevel?: string;
}

export const PULL_POLICIES: readonly PullPolicy[] = ["Always", "IfNotPresent", "Never"];

/** Parses the flags; throws a ConfigError that lists every bad flag. */
export function parseWebhookConfig(flags: WebhookFlags): WebhookConfig {
  const problems = new Problems();
  const port = problems.port("--port", flags.port ?? "8443");
  const tlsCertFile = problems.required("--tls-cert", flags.tlsCert);
  const tlsKeyFile = problems.required("--tls-key", flags.tlsKey);

  const sidecarImage = problems.required("--sidecar-image", flags.sidecarImage);
  if (/\s/.test(sidecarImage))
    problems.add(`--sidecar-image ${JSON.stringify(sidecarImage)} contains whitespace`);

  const pullPolicy = flags.sidecarImagePullPolicy;
  if (pullPolicy !== undefined && !PULL_POLICIES.includes(pullPolicy as PullPolicy)) {
    problems.add(
      `--sidecar-image-pull-policy ${JSON.stringify(pullPolicy)} is not one of ${PULL_POLICIES.join(", ")}`,
    );
  }

  const sidecarProbes = flags.sidecarProbes ?? "http";
  if (!SIDECAR_PROBES.includes(sidecarProbes as SidecarProbes)) {
    problems.add(
      `--sidecar-probes ${JSON.stringify(sidecarProbes)} is not one of ${SIDECAR_PROBES.join(", ")}`,
    );
  }

  const handlerUrl = problems.required("--handler-url", flags.handlerUrl);
  if (handlerUrl !== "") {
    const problem = handlerUrlProblem(handlerUrl);
    if (problem) problems.add(`--handler-url ${JSON.stringify(handlerUrl)} ${problem}`);
  }

  const stateDirText = flags.stateDir ?? DEFAULT_STATE_DIR;
  const stateDir = posix.normalize(stateDirText).replace(/(.)\/$/, "$1");
  if (!posix.isAbsolute(stateDirText) || stateDir === "/") {
    problems.add(`--state-dir ${JSON.stringify(stateDirText)} is not an absolute directory path below /`);
  }

  const logLevel = problems.logLevel("--log-level", flags.logLevel ?? "info");

  if (flags.handlerCaFile !== undefined && flags.handlerCaFile.trim() === "") {
    problems.add("--handler-ca-file is empty; leave it out to let sidecars use the system trust store");
  }

  problems.throwIfAny();

  const config: WebhookConfig = {
    port,
    tlsCertFile,
    tlsKeyFile,
    sidecarImage,
    handlerUrl,
    stateDir,
    sidecarProbes: sidecarProbes as SidecarProbes,
    logLevel,
  };
  if (pullPolicy !== undefined) config.sidecarImagePullPolicy = pullPolicy as PullPolicy;
  if (flags.handlerCaFile !== undefined) config.handlerCaFile = flags.handlerCaFile;
  return config;
}

/** Sidecars send their token to this URL, so it must be https and carry nothing else. */
export function handlerUrlProblem(text: string): string | undefined {
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
