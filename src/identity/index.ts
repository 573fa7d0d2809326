// Pod identity from projected service-account tokens: the verifier (pod-token.ts) and the
// issuer's keys (jwks.ts). Both the handler and the recovery sidecar's peer API use it:
//
//   const kc = new KubeConfig();
//   kc.loadFromDefault();
//   const verifier = createPodTokenVerifier({
//     issuer: await discoverIssuer(kc),
//     audience: TOKEN_AUDIENCE,
//     keys: kubeJwksSource(kc, logger),
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
  kubeJwksSource,
  type CachedJwksOptions,
  type JwksSource,
} from "./jwks.ts";
