// The handler's configuration: every flag is parsed and checked here, and an error names
// the flag and the bad value. The Helm chart passes exactly these flags.
import { parseLabelSelector, type LabelSelector } from "../kube/label-selector.ts";
import { DEFAULT_POD_SELECTOR } from "../names.ts";

export interface HandlerConfig {
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  podSelector: LabelSelector;
  /** Unset: discovered from the apiserver's /.well-known/openid-configuration. */
  issuer?: string;
  /** Unset: KUBECONFIG, ~/.kube/config or in-cluster. */
  kubeconfig?: string;
  logLevel: string;
}

/** The flags as commander hands them over: strings, or undefined when not given. */
export interface HandlerFlags {
  port?: string;
  tlsCert?: string;
  tlsKey?: string;
  podSelector?: string;
  issuer?: string;
  kubeconfig?: string;
  logLevel?: string;
}

export const DEFAULT_POD_SELECTOR_TEXT = Object.entries(DEFAULT_POD_SELECTOR)
  .map(([key, value]) => `${key}=${value}`)
  .join(",");

export class ConfigError extends Error {
  override name = "ConfigError";
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Parses the flags; throws a ConfigError that lists every bad flag. */
export function parseHandlerConfig(flags: HandlerFlags): HandlerConfig {
  const problems: string[] = [];
  const required = (flag: string, value: string | undefined): string => {
    if (value === undefined || value.trim() === "") problems.push(`${flag} is required`);
    return value?.trim() ?? "";
  };

  const portText = flags.port ?? "8443";
  const port = Number(portText);
  // Port 0 asks the OS for a free port (tests); the log says which one.
  if (!/^\d+$/.test(portText) || port > 65535) {
    problems.push(`--port ${JSON.stringify(portText)} is not a port number (0-65535)`);
  }
  const tlsCertFile = required("--tls-cert", flags.tlsCert);
  const tlsKeyFile = required("--tls-key", flags.tlsKey);

  const selectorText = flags.podSelector ?? DEFAULT_POD_SELECTOR_TEXT;
  let podSelector: LabelSelector | undefined;
  try {
    podSelector = parseLabelSelector(selectorText);
  } catch (err) {
    problems.push(`--pod-selector ${JSON.stringify(selectorText)}: ${(err as Error).message}`);
  }

  if (flags.issuer !== undefined && flags.issuer.trim() === "") {
    problems.push("--issuer is empty; leave it out to discover the issuer from the apiserver");
  }
  if (flags.kubeconfig !== undefined && flags.kubeconfig.trim() === "") {
    problems.push("--kubeconfig is empty; leave it out to use KUBECONFIG or the in-cluster configuration");
  }

  const logLevel = flags.logLevel ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`--log-level ${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(", ")}`);
  }

  if (problems.length > 0 || !podSelector) throw new ConfigError(problems.join("; "));
  const config: HandlerConfig = { port, tlsCertFile, tlsKeyFile, podSelector, logLevel };
  if (flags.issuer !== undefined) config.issuer = flags.issuer.trim();
  if (flags.kubeconfig !== undefined) config.kubeconfig = flags.kubeconfig.trim();
  return config;
}
