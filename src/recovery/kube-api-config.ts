// The sidecar's KubeConfig, built from the API credentials that the webhook puts into the
// coordinator-ha-token volume. @kubernetes/client-node's loadFromCluster knows only the
// standard path (/var/run/secrets/kubernetes.io/serviceaccount), where a pod with
// automountServiceAccountToken off has nothing; so this sets up the same cluster and user
// as loadFromCluster (v2.0.1) does, with our files.
import { existsSync, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { KUBE_API_CA_FILE, KUBE_API_NAMESPACE_FILE, KUBE_API_TOKEN_FILE, TOKEN_VOLUME } from "../names.ts";

export interface KubeApiCredentials {
  /** A token for the apiserver's own audience, renewed by the kubelet. */
  tokenFile: string;
  /** The cluster CA (the kube-root-ca.crt ConfigMap). */
  caFile: string;
  /** The pod's namespace; optional, as for loadFromCluster. */
  namespaceFile: string;
}

/** Where the webhook puts them in the sidecar. */
export const SIDECAR_KUBE_API_CREDENTIALS: KubeApiCredentials = {
  tokenFile: KUBE_API_TOKEN_FILE,
  caFile: KUBE_API_CA_FILE,
  namespaceFile: KUBE_API_NAMESPACE_FILE,
};

type Env = Readonly<Record<string, string | undefined>>;

/** Why these credentials cannot work, naming what is missing; undefined when nothing is. */
export function missingKubeApiCredentials(
  credentials: KubeApiCredentials,
  env: Env = process.env,
): string | undefined {
  const unset = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"].filter((name) => !env[name]);
  if (unset.length > 0) return `${unset.join(" and ")} ${unset.length > 1 ? "are" : "is"} not set`;
  const absent = [credentials.tokenFile, credentials.caFile].filter((file) => !existsSync(file));
  if (absent.length > 0) {
    return `${absent.join(" and ")} ${absent.length > 1 ? "do" : "does"} not exist (the coordinator-ha webhook puts them into the volume ${TOKEN_VOLUME})`;
  }
  return undefined;
}

/**
 * A KubeConfig for the apiserver at $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the
 * address the kubelet gives every container. The user is the tokenFile auth provider, as
 * loadFromCluster's: it re-reads the file once a minute, so the kubelet's renewals take effect
 * (a token read once would stop working when it expires). The CA file is read per request.
 * Missing credentials do not throw here: requests fail, and missingKubeApiCredentials says why.
 */
export function kubeConfigFromFiles(credentials: KubeApiCredentials, env: Env = process.env): KubeConfig {
  const host = env["KUBERNETES_SERVICE_HOST"] ?? "";
  const port = env["KUBERNETES_SERVICE_PORT"] ?? "";
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  const namespace = existsSync(credentials.namespaceFile)
    ? readFileSync(credentials.namespaceFile, "utf8")
    : undefined;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "inCluster", server, caFile: credentials.caFile, skipTLSVerify: false }],
    users: [
      {
        name: "inClusterUser",
        authProvider: { name: "tokenFile", config: { tokenFile: credentials.tokenFile } },
      },
    ],
    contexts: [
      {
        name: "inClusterContext",
        cluster: "inCluster",
        user: "inClusterUser",
        ...(namespace === undefined ? {} : { namespace }),
      },
    ],
    currentContext: "inClusterContext",
  });
  return kc;
}
