// The sidecar's check of its peers' tokens: the cluster's service-account issuer, reached
// with the API credentials that the webhook mounts into the sidecar (volume
// coordinator-ha-kube-api), whatever the pod's automountServiceAccountToken. Only tokens for
// the peer audience (coordinator-ha-peer) pass: a peer never receives, and so can never
// replay, a token that the handler would accept, and the handler's token is no key here.
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { discoverIssuer, kubeJwksSource, type PodTokenVerifier } from "../identity/index.ts";
import { KUBE_API_DIR, KUBE_API_VOLUME } from "../names.ts";
import { peerTokenVerifier } from "./peer-api.ts";

/** The token that @kubernetes/client-node's loadFromCluster reads (re-read every minute). */
const API_TOKEN_FILE = `${KUBE_API_DIR}/token`;

/**
 * A verifier whose issuer is discovered on first use, and again after a failure: the
 * apiserver may be unreachable when the sidecar starts, and the peer API answers 503
 * ("try again") meanwhile instead of the sidecar failing to start.
 */
export function inClusterVerifier(logger: Logger): PodTokenVerifier {
  // Without API credentials no peer can ever be verified, and so no other pod can recover
  // from this one: say so at startup, not only on the first peer request. The webhook always
  // mounts them; this catches a sidecar that was added to a pod by other means.
  const missing = !process.env["KUBERNETES_SERVICE_HOST"]
    ? "KUBERNETES_SERVICE_HOST is not set"
    : !existsSync(API_TOKEN_FILE)
      ? `${API_TOKEN_FILE} does not exist (the coordinator-ha webhook mounts volume ${KUBE_API_VOLUME} there)`
      : undefined;
  if (missing) {
    logger.error(
      { reason: missing },
      "this sidecar cannot reach the Kubernetes API to verify peers' tokens; peers cannot recover from this pod",
    );
  }
  const kc = new KubeConfig();
  kc.loadFromCluster();
  const keys = kubeJwksSource(kc, logger);
  let verifier: Promise<PodTokenVerifier> | undefined;
  const ready = () =>
    (verifier ??= discoverIssuer(kc).then(
      (issuer) => {
        logger.info({ issuer }, "discovered the service-account issuer");
        return peerTokenVerifier(issuer, keys);
      },
      (err: unknown) => {
        verifier = undefined;
        throw err;
      },
    ));
  return { verify: async (token) => (await ready()).verify(token) };
}
