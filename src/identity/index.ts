// Pod identity from projected service-account tokens: the verifier (pod-token.ts) and the
// issuer's keys (jwks.ts). Both the handler and the recovery sidecar's peer API use it:
//
//   const api = kubeIssuerDiscovery(kc); // or the sidecar's sidecarIssuerDiscovery()
//   const verifier = createPodTokenVerifier({
//     issuer: await discoverIssuer(api),
//     audience: TOKEN_AUDIENCE,
//     keys: issuerJwksSource(api, logger),
//   });
//   const { namespace, serviceAccount, podName, podUid } = await verifier.verify(token);
export {
  createPodTokenVerifier,
  IdentityError,
  IdentityReason,
  type PodIdentity,
  type PodTokenVerifier,
  type PodTokenVerifierOptions,
} from "./pod-token.ts";
export {
  cachedJwksSource,
  discoverIssuer,
  issuerJwksSource,
  type CachedJwksOptions,
  type IssuerDiscovery,
  type JwksSource,
} from "./jwks.ts";
