// The verifier of the peer API's callers, apart from the API itself (peer-api.ts), which the
// reference Coordinator's own recovery mode serves too with another verifier.
import { createPodTokenVerifier, type JwksSource, type PodTokenVerifier } from "../identity/index.ts";
import { PEER_TOKEN_AUDIENCE } from "../names.ts";

/**
 * Tokens for the peer audience only. A token for the handler's audience is refused, so that
 * the handler's token never needs to leave the pod.
 */
export function peerTokenVerifier(issuer: string, keys: JwksSource): PodTokenVerifier {
  return createPodTokenVerifier({ issuer, audience: PEER_TOKEN_AUDIENCE, keys });
}
