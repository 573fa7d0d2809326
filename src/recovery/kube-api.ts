// The sidecar's reads from the Kubernetes API, with the credentials that the webhook puts into
// the coordinator-ha-token volume (whatever the pod's automountServiceAccountToken).
// Deliberately not @kubernetes/client-node: the sidecar reads two small documents (the
// issuer's OIDC discovery and key set), and loading that client alone would add about 80 MB
// of resident memory to every Coordinator pod (docs/performance.md). The same credentials and
// rules as the client's loadFromCluster: the apiserver at $KUBERNETES_SERVICE_HOST:PORT,
// verified with the cluster CA file, and the pod-bound token file as the bearer.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { isIPv6 } from "node:net";
import { requestJson, type JsonResponse } from "../http/client.ts";
import type { IssuerDiscovery } from "../identity/index.ts";
import { KUBE_API_CA_FILE, KUBE_API_NAMESPACE_FILE, KUBE_API_TOKEN_FILE, TOKEN_VOLUME } from "../names.ts";

export interface KubeApiCredentials {
  /** A token for the apiserver's own audience, renewed by the kubelet. */
  tokenFile: string;
  /** The cluster CA (the kube-root-ca.crt ConfigMap). */
  caFile: string;
  /** The pod's namespace, as kube-api-access has it; the sidecar takes its own from the downward API. */
  namespaceFile: string;
}

/** Where the webhook puts them in the sidecar. */
export const SIDECAR_KUBE_API_CREDENTIALS: KubeApiCredentials = {
  tokenFile: KUBE_API_TOKEN_FILE,
  caFile: KUBE_API_CA_FILE,
  namespaceFile: KUBE_API_NAMESPACE_FILE,
};

/** The apiserver answers quickly or is treated as unreachable (the callers retry). */
const TIMEOUT_MS = 10_000;
/** A key set or a pod is a few KiB; anything far larger is not the apiserver's answer. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

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

export interface KubeApi {
  /** https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
  server: string;
  /**
   * GET `path` (absolute, e.g. /api/v1/namespaces/ns/pods/name); any status. `accept` is the
   * media type to ask for: the apiserver answers 406 to application/json for the key set.
   */
  get(path: string, accept?: string): Promise<JsonResponse>;
  /** GET `path`, expecting 200; else throws, naming the path and the apiserver's answer. */
  getJson(path: string, accept?: string): Promise<unknown>;
}

/**
 * The apiserver at the address the kubelet gives every container. The token and the CA are
 * read from their files on every request (requests are rare: a key set every few minutes), so
 * the kubelet's renewals always take effect. Missing credentials do not throw here: requests
 * fail, and missingKubeApiCredentials says why.
 */
export function kubeApi(credentials: KubeApiCredentials, env: Env = process.env): KubeApi {
  const host = env["KUBERNETES_SERVICE_HOST"] ?? "";
  const port = env["KUBERNETES_SERVICE_PORT"] ?? "";
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  const get = async (path: string, accept = "application/json"): Promise<JsonResponse> => {
    const [token, ca] = await Promise.all([
      readFile(credentials.tokenFile, "utf8"),
      readFile(credentials.caFile, "utf8"),
    ]);
    return requestJson({
      // Throws for an unset address, as a failed request (the sidecar still starts).
      url: new URL(path, server),
      method: "GET",
      headers: { authorization: `Bearer ${token.trim()}`, accept },
      ca,
      timeoutMs: TIMEOUT_MS,
      maxResponseBytes: MAX_RESPONSE_BYTES,
    });
  };
  return {
    server,
    get,
    getJson: async (path, accept) => {
      const res = await get(path, accept);
      if (res.status !== 200) {
        const message = (res.body as { message?: unknown } | undefined)?.message;
        throw new Error(
          `GET ${path}: the apiserver answered ${res.status}${typeof message === "string" ? `: ${message}` : ""}`,
        );
      }
      return res.body;
    },
  };
}

/** The service-account issuer's discovery documents, read as this pod. */
export function kubeApiIssuerDiscovery(api: KubeApi): IssuerDiscovery {
  return {
    openidConfiguration: () => api.getJson("/.well-known/openid-configuration"),
    // The only media type the apiserver serves the key set as (RFC 7517).
    keySet: () => api.getJson("/openid/v1/jwks", "application/jwk-set+json"),
  };
}
