// Projected service-account tokens: minted by TokenRequest, bound to the pod, with the
// requested audience and lifetime, and verifiable against the apiserver's own JWKS.
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOKEN_AUDIENCE } from "../../../src/names.ts";
import { createNamespace, deleteNamespace, eventually, getJson, kubeConfig } from "../kube.ts";
import { containerLog, createPod, isReady, waitForPod } from "./pods.ts";

describe("projected service-account tokens", () => {
  const kc = kubeConfig();
  let namespace: string;

  beforeAll(async () => {
    namespace = await createNamespace(kc, "agent-token");
  });
  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("mounts a pod-bound token with the requested audience that verifies against the JWKS", async () => {
    await createPod(kc, namespace, "holder", {
      terminationGracePeriodSeconds: 1,
      volumes: [
        {
          name: "token",
          projected: {
            sources: [
              { serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: 3600, path: "token" } },
            ],
          },
        },
      ],
      containers: [
        {
          name: "app",
          image: "busybox",
          // Prints the projected token and the default kube-api-access token.
          command: [
            "sh",
            "-c",
            "cat /var/run/secrets/cha/token; echo; cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo; exec sleep 3600",
          ],
          volumeMounts: [{ name: "token", mountPath: "/var/run/secrets/cha" }],
        },
      ],
    });
    const pod = await waitForPod(kc, namespace, "holder", "Ready", isReady);
    const [token, apiToken] = await eventually("both tokens in the log", async () => {
      const lines = containerLog(namespace, "holder", "app").split("\n").filter(Boolean);
      return lines.length >= 2 ? lines : undefined;
    });

    const discovery = await getJson<{ issuer: string }>(kc, "/.well-known/openid-configuration");
    const jwks = createLocalJWKSet(await getJson<JSONWebKeySet>(kc, "/openid/v1/jwks"));
    const { payload } = await jwtVerify(token!, jwks, { issuer: discovery.issuer, audience: TOKEN_AUDIENCE });
    expect(payload.sub).toBe(`system:serviceaccount:${namespace}:default`);
    expect(payload["kubernetes.io"]).toMatchObject({
      namespace,
      node: { name: "local-node" },
      pod: { name: "holder", uid: pod.metadata!.uid },
      serviceaccount: { name: "default" },
    });
    expect(payload.exp! - payload.iat!).toBe(3600);

    // The default kube-api-access volume holds a token for the apiserver's own audience.
    const api = decodeJwt(apiToken!);
    expect(api.aud).toContain(discovery.issuer);
    expect((api["kubernetes.io"] as { pod: { uid: string } }).pod.uid).toBe(pod.metadata!.uid);
  });
});
