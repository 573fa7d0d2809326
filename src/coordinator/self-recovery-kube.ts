// What the Coordinator's own recovery (self-recovery.ts) needs from the cluster, read with the
// pod's default service-account credentials (the chart mounts them, and grants get/list pods,
// only in this mode): its identity from the downward API, the pods of its StatefulSet, a
// verifier of its peers' tokens, and its own token for them.
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { createPodTokenVerifier, type PodIdentity, type PodTokenVerifier } from "../identity/index.ts";
import { SELF_RECOVERY_AUDIENCE, SELF_RECOVERY_TOKEN_FILE } from "../names.ts";
import { inClusterVerifier } from "../recovery/in-cluster-verifier.ts";
import { kubeApi, type KubeApiCredentials } from "../recovery/kube-api.ts";
import { listedPods, type ListedPod } from "./self-recovery-rules.ts";

/** Where Kubernetes mounts a pod's default service-account credentials. */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const DEFAULT_CREDENTIALS: KubeApiCredentials = {
  tokenFile: `${SERVICE_ACCOUNT_DIR}/token`,
  caFile: `${SERVICE_ACCOUNT_DIR}/ca.crt`,
  namespaceFile: `${SERVICE_ACCOUNT_DIR}/namespace`,
};

/** The downward-API variables the chart sets in this mode. */
export const SELF_RECOVERY_ENV = {
  podName: "POD_NAME",
  namespace: "POD_NAMESPACE",
  podUid: "POD_UID",
  serviceAccount: "SERVICE_ACCOUNT",
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/** This pod, from the environment; throws naming every missing variable. */
export function selfIdentity(env: Env = process.env): PodIdentity {
  const missing = Object.values(SELF_RECOVERY_ENV).filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(`--recovery self needs the downward-API variables ${missing.join(", ")}`);
  }
  return {
    podName: env[SELF_RECOVERY_ENV.podName]!,
    namespace: env[SELF_RECOVERY_ENV.namespace]!,
    podUid: env[SELF_RECOVERY_ENV.podUid]!,
    serviceAccount: env[SELF_RECOVERY_ENV.serviceAccount]!,
  };
}

export interface InClusterSelfRecovery {
  listPods(): Promise<ListedPod[]>;
  verifier: PodTokenVerifier;
  token(): Promise<string>;
}

/** `selector`: the StatefulSet's pod label selector (k=v,k=v). */
export function inClusterSelfRecovery(
  self: PodIdentity,
  selector: string,
  logger: Logger,
): InClusterSelfRecovery {
  const api = kubeApi(DEFAULT_CREDENTIALS);
  const path = `/api/v1/namespaces/${encodeURIComponent(self.namespace)}/pods?labelSelector=${encodeURIComponent(selector)}`;
  return {
    listPods: async () => listedPods(await api.getJson(path)),
    verifier: inClusterVerifier(logger, DEFAULT_CREDENTIALS, (issuer, keys) =>
      createPodTokenVerifier({ issuer, audience: SELF_RECOVERY_AUDIENCE, keys }),
    ),
    // Read on every round: the kubelet renews it.
    token: async () => (await readFile(SELF_RECOVERY_TOKEN_FILE, "utf8")).trim(),
  };
}
