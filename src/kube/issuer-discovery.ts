// The service-account issuer's discovery documents through the Kubernetes client, for the
// handler (which loads the client anyway for its pod watch).
import { OpenidApi, WellKnownApi, type KubeConfig } from "@kubernetes/client-node";
import type { IssuerDiscovery } from "../identity/index.ts";
import { withTimeout } from "./timeout.ts";

export function kubeIssuerDiscovery(kc: KubeConfig): IssuerDiscovery {
  const openid = kc.makeApiClient(OpenidApi);
  const wellKnown = kc.makeApiClient(WellKnownApi);
  return {
    openidConfiguration: async () =>
      parseJson(await wellKnown.getServiceAccountIssuerOpenIDConfiguration({}, withTimeout())),
    keySet: async () => parseJson(await openid.getServiceAccountIssuerOpenIDKeyset({}, withTimeout())),
  };
}

// The generated client declares these bodies as strings, but hands over the parsed
// object when the apiserver answers with a JSON media type (application/jwk-set+json).
function parseJson(body: unknown): unknown {
  return typeof body === "string" ? JSON.parse(body) : body;
}
