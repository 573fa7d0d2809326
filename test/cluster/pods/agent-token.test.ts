// Projected service-account tokens: minted by TokenRequest, bound to the pod, with the
// requested audience and lifetime, and verifiable against the apiserver's own JWKS. The
// volume is the one the webhook injects: two tokens of one pod, one per audience, and the
// sidecar's API credentials (a token for the apiserver's own audience, the cluster CA, the
// namespace) beside them in the same volume.
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../../src/names.ts";
import { tokenVolume } from "../../../src/webhook/sidecar.ts";
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

  it("mounts pod-bound tokens with the requested audiences that verify against the JWKS", async () => {
    await createPod(kc, namespace, "holder", {
      terminationGracePeriodSeconds: 1,
      volumes: [{ ...tokenVolume(), name: "token" }],
      containers: [
        {
          name: "app",
          image: "busybox",
          // Prints the two projected identity tokens, the default kube-api-access token, then
          // the volume's API token, namespace and the first line of its CA, one per line.
          command: [
            "sh",
            "-c",
            [
              "cat /var/run/secrets/cha/token; echo",
              "cat /var/run/secrets/cha/peer-token; echo",
              "cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo",
              "cat /var/run/secrets/cha/kube-api-token; echo",
              "cat /var/run/secrets/cha/namespace; echo",
              "head -n 1 /var/run/secrets/cha/ca.crt",
              "exec sleep 3600",
            ].join("; "),
          ],
          volumeMounts: [{ name: "token", mountPath: "/var/run/secrets/cha" }],
        },
      ],
    });
    const pod = await waitForPod(kc, namespace, "holder", "Ready", isReady);
    const [token, peerToken, apiToken, kubeApiToken, podNamespace, caLine] = await eventually(
      "the four tokens, the namespace and the CA in the log",
      async () => {
        const lines = containerLog(namespace, "holder", "app").split("\n").filter(Boolean);
        return lines.length >= 6 ? lines : undefined;
      },
    );

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

    // The peer token is the same pod's, for the other audience only: neither verifies as the other.
    const peer = await jwtVerify(peerToken!, jwks, {
      issuer: discovery.issuer,
      audience: PEER_TOKEN_AUDIENCE,
    });
    expect(peer.payload.aud).toEqual([PEER_TOKEN_AUDIENCE]);
    expect(peer.payload["kubernetes.io"]).toMatchObject({ pod: { name: "holder", uid: pod.metadata!.uid } });
    expect(payload.aud).toEqual([TOKEN_AUDIENCE]);
    await expect(
      jwtVerify(peerToken!, jwks, { issuer: discovery.issuer, audience: TOKEN_AUDIENCE }),
    ).rejects.toThrow(/aud/);

    // The default kube-api-access volume holds a token for the apiserver's own audience.
    const api = decodeJwt(apiToken!);
    expect(api.aud).toContain(discovery.issuer);
    expect((api["kubernetes.io"] as { pod: { uid: string } }).pod.uid).toBe(pod.metadata!.uid);

    // So does the injected volume's, which the sidecar uses whatever automountServiceAccountToken
    // says, with the cluster CA and the namespace beside it.
    const kubeApi = await jwtVerify(kubeApiToken!, jwks, { issuer: discovery.issuer });
    expect(kubeApi.payload.aud).toContain(discovery.issuer);
    expect(kubeApi.payload["kubernetes.io"]).toMatchObject({
      pod: { name: "holder", uid: pod.metadata!.uid },
    });
    expect(podNamespace).toBe(namespace);
    expect(caLine).toBe("-----BEGIN CERTIFICATE-----");
  });
});
