// The verifier of the peer API's callers, apart from the API itself so that building it
// (in-cluster-verifier.ts, at startup) does not load the API's express app, which the sidecar
// loads only on the first peer request (src/http/lazy-listener.ts).
import { createPodTokenVerifier, type JwksSource, type PodTokenVerifier } from "../identity/index.ts";
import { PEER_TOKEN_AUDIENCE } from "../names.ts";

/**
 * Tokens for the peer audience only. A token for the handler's audience is refused, so that
 * the handler's token never needs to leave the pod.
 */
export function peerTokenVerifier(issuer: string, keys: JwksSource): PodTokenVerifier {
  return createPodTokenVerifier({ issuer, audience: PEER_TOKEN_AUDIENCE, keys });
}
