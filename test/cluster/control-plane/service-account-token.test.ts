// The apiserver issues pod-bound service-account tokens that verify, with jose, against the
// JWKS it serves: the identity our handler and sidecars rely on.
import { AuthenticationV1Api, CoreV1Api, type V1Pod, type V1ServiceAccount } from "@kubernetes/client-node";
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOKEN_AUDIENCE } from "../../../src/names.ts";
import { NODE_NETWORK, SERVICE_ACCOUNT_ISSUER, ports } from "../launcher/config.ts";
import {
  createNamespace,
  deleteNamespace,
  eventually,
  getJson,
  kubeConfig,
  requestPodToken,
} from "../kube.ts";

describe("service-account tokens bound to a pod", () => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let namespace: string;
  let sa: V1ServiceAccount;
  let pod: V1Pod;

  const requestToken = (audiences: string[]) => requestPodToken(core, pod, audiences);

  beforeAll(async () => {
    namespace = await createNamespace(kc, "token");
    sa = await core.createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: "coordinator" } },
    });
    pod = await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: "coordinator-0" },
        spec: {
          serviceAccountName: "coordinator",
          containers: [{ name: "app", image: "registry.invalid/app:1" }],
        },
      },
    });
  });

  afterAll(async () => {
    if (namespace) await deleteNamespace(kc, namespace);
  });

  it("serves OIDC discovery for the configured issuer", async () => {
    const doc = await getJson<{ issuer: string; jwks_uri: string }>(kc, "/.well-known/openid-configuration");
    expect(doc.issuer).toBe(SERVICE_ACCOUNT_ISSUER);
    // Where pods (and the host) reach the apiserver: the bridge address.
    expect(doc.jwks_uri).toBe(`https://${NODE_NETWORK.hostAddress}:${ports.apiserver}/openid/v1/jwks`);
  });

  it("issues a token that verifies against the served JWKS, with the pod's claims", async () => {
    const jwks = await getJson<JSONWebKeySet>(kc, "/openid/v1/jwks");
    expect(jwks.keys.map((k) => k.alg)).toEqual(["RS256"]);
    const token = await requestToken([TOKEN_AUDIENCE]);

    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: SERVICE_ACCOUNT_ISSUER,
      audience: TOKEN_AUDIENCE,
    });
    expect(protectedHeader.alg).toBe("RS256");
    expect(payload.sub).toBe(`system:serviceaccount:${namespace}:coordinator`);
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(payload["kubernetes.io"]).toMatchObject({
      namespace,
      pod: { name: "coordinator-0", uid: pod.metadata!.uid },
      serviceaccount: { name: "coordinator", uid: sa.metadata!.uid },
    });
  });

  it("yields a token that jose rejects for another audience or with a forged payload", async () => {
    const jwks = createLocalJWKSet(await getJson<JSONWebKeySet>(kc, "/openid/v1/jwks"));
    const token = await requestToken(["someone-else"]);
    await expect(
      jwtVerify(token, jwks, { issuer: SERVICE_ACCOUNT_ISSUER, audience: TOKEN_AUDIENCE }),
    ).rejects.toMatchObject({ code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "aud" });

    const [header, , signature] = token.split(".");
    const claims = decodeJwt(token);
    const forged = Buffer.from(JSON.stringify({ ...claims, aud: [TOKEN_AUDIENCE] })).toString("base64url");
    await expect(jwtVerify(`${header}.${forged}.${signature}`, jwks)).rejects.toMatchObject({
      code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    });
  });

  it("stops authenticating the token once its pod is gone", async () => {
    const token = await requestToken([TOKEN_AUDIENCE]);
    const review = () =>
      kc
        .makeApiClient(AuthenticationV1Api)
        .createTokenReview({ body: { spec: { token, audiences: [TOKEN_AUDIENCE] } } });
    expect((await review()).status?.authenticated).toBe(true);

    await core.deleteNamespacedPod({ namespace, name: "coordinator-0", gracePeriodSeconds: 0 });
    await eventually("the pod to be deleted", async () => {
      const pods = await core.listNamespacedPod({ namespace });
      return pods.items.length === 0 ? true : undefined;
    });
    // The apiserver caches successful token authentications for a few seconds.
    const after = await eventually("the token to stop authenticating", async () => {
      const r = await review();
      return r.status?.authenticated ? undefined : r;
    });
    expect(after.status?.error).toMatch(/service account token has been invalidated/);
  });
});
