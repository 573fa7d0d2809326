// The sidecar's check of its peers' tokens: the cluster's service-account issuer, reached
// with the API credentials that the webhook puts into the sidecar's token volume
// (coordinator-ha-token), whatever the pod's automountServiceAccountToken. Only tokens for
// the peer audience (coordinator-ha-peer) pass: a peer never receives, and so can never
// replay, a token that the handler would accept, and the handler's token is no key here.
import type { Logger } from "pino";
import {
  discoverIssuer,
  issuerJwksSource,
  type JwksSource,
  type PodTokenVerifier,
} from "../identity/index.ts";
import {
  kubeApi,
  kubeApiIssuerDiscovery,
  missingKubeApiCredentials,
  SIDECAR_KUBE_API_CREDENTIALS,
  type KubeApiCredentials,
} from "./kube-api.ts";
import { peerTokenVerifier } from "./peer-token.ts";

/**
 * A verifier whose issuer is discovered on first use, and again after a failure: the
 * apiserver may be unreachable when the sidecar starts, and the peer API answers 503
 * ("try again") meanwhile instead of the sidecar failing to start.
 */
export function inClusterVerifier(
  logger: Logger,
  // The reference Coordinator's own recovery (src/coordinator/self-recovery.ts) passes its
  // pod's default credentials and its own audience.
  credentials: KubeApiCredentials = SIDECAR_KUBE_API_CREDENTIALS,
  verifierFor: (issuer: string, keys: JwksSource) => PodTokenVerifier = peerTokenVerifier,
): PodTokenVerifier {
  // Without API credentials no peer can ever be verified, and so no other pod can recover
  // from this one: say so at startup, not only on the first peer request. The webhook always
  // mounts them; this catches a sidecar that was added to a pod by other means.
  const missing = missingKubeApiCredentials(credentials);
  if (missing) {
    logger.error(
      { reason: missing },
      "cannot reach the Kubernetes API to verify peers' tokens; peers cannot recover from this pod",
    );
  }
  const discovery = kubeApiIssuerDiscovery(kubeApi(credentials));
  const keys = issuerJwksSource(discovery, logger);
  let verifier: Promise<PodTokenVerifier> | undefined;
  const ready = () =>
    (verifier ??= discoverIssuer(discovery).then(
      (issuer) => {
        logger.info({ issuer }, "discovered the service-account issuer");
        return verifierFor(issuer, keys);
      },
      (err: unknown) => {
        verifier = undefined;
        throw err;
      },
    ));
  return { verify: async (token) => (await ready()).verify(token) };
}
