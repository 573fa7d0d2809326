// The handler's configuration: every flag is parsed and checked here, and an error names
// the flag and the bad value. The Helm chart passes exactly these flags.
import { parseLabelSelector, type LabelSelector } from "../kube/label-selector.ts";
import { DEFAULT_POD_SELECTOR } from "../names.ts";
import { ConfigError, Problems } from "../config/problems.ts";

export { ConfigError };

export interface HandlerConfig {
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  podSelector: LabelSelector;
  /** Unset: discovered from the apiserver's /.well-known/openid-configuration. */
  issuer?: string;
  /** Unset: KUBECONFIG, ~/.kube/config or in-cluster. */
  kubeconfig?: string;
  /**
   * The only namespaces whose pods the handler watches and serves, each once, in the order
   * given. Unset: every namespace (the handler then needs its rights cluster-wide).
   */
  namespaces?: string[];
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
  /** Each --namespace as given (repeated, or a comma-separated list). */
  namespace?: string[];
  logLevel?: string;
}

export const DEFAULT_POD_SELECTOR_TEXT = Object.entries(DEFAULT_POD_SELECTOR)
  .map(([key, value]) => `${key}=${value}`)
  .join(",");

/** Parses the flags; throws a ConfigError that lists every bad flag. */
export function parseHandlerConfig(flags: HandlerFlags): HandlerConfig {
  const problems = new Problems();
  const port = problems.port("--port", flags.port ?? "8443");
  const tlsCertFile = problems.required("--tls-cert", flags.tlsCert);
  const tlsKeyFile = problems.required("--tls-key", flags.tlsKey);

  const selectorText = flags.podSelector ?? DEFAULT_POD_SELECTOR_TEXT;
  let podSelector: LabelSelector | undefined;
  try {
    podSelector = parseLabelSelector(selectorText);
  } catch (err) {
    problems.add(`--pod-selector ${JSON.stringify(selectorText)}: ${(err as Error).message}`);
  }

  if (flags.issuer !== undefined && flags.issuer.trim() === "") {
    problems.add("--issuer is empty; leave it out to discover the issuer from the apiserver");
  }
  if (flags.kubeconfig !== undefined && flags.kubeconfig.trim() === "") {
    problems.add("--kubeconfig is empty; leave it out to use KUBECONFIG or the in-cluster configuration");
  }

  const namespaces = flags.namespace === undefined ? undefined : parseNamespaces(problems, flags.namespace);
  const logLevel = problems.logLevel("--log-level", flags.logLevel ?? "info");

  problems.throwIfAny();
  // parseLabelSelector either returned or added a problem above.
  if (!podSelector) throw new ConfigError("--pod-selector could not be parsed");
  const config: HandlerConfig = { port, tlsCertFile, tlsKeyFile, podSelector, logLevel };
  if (flags.issuer !== undefined) config.issuer = flags.issuer.trim();
  if (flags.kubeconfig !== undefined) config.kubeconfig = flags.kubeconfig.trim();
  if (namespaces !== undefined) config.namespaces = namespaces;
  return config;
}

/** A namespace name is a DNS-1123 label (what the apiserver accepts for metadata.name). */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** commander's collector of a repeatable flag. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseNamespaces(problems: Problems, given: string[]): string[] {
  const namespaces: string[] = [];
  for (const text of given) {
    for (const item of text.split(",").map((s) => s.trim())) {
      if (item.length > 63 || !DNS1123_LABEL.test(item)) {
        problems.add(
          `--namespace ${JSON.stringify(text)}: ${JSON.stringify(item)} is not a namespace name ` +
            "(a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending " +
            "with a letter or digit)",
        );
      } else if (!namespaces.includes(item)) {
        namespaces.push(item);
      }
    }
  }
  return namespaces;
}
