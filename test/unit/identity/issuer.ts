// A stand-in for the kube-apiserver's service-account token issuer: real keys, real
// signatures, and the claim layout of a TokenRequest bound to a pod (Kubernetes >= 1.29),
// as checked against the local cluster's kube-apiserver v1.35 (`kubectl create token
// coordinator --audience coordinator-ha --bound-object-kind Pod --bound-object-name …`; the
// "node" member appears once the pod is bound to a node):
//
//   header  {"alg":"RS256","kid":"<base64url SHA-256 of the public key's DER>"}
//   payload {"aud":["coordinator-ha"],"exp":…,"iat":…,"nbf":…,
//            "iss":"https://kubernetes.default.svc.cluster.local","jti":"<uuid>",
//            "kubernetes.io":{"namespace":"default",
//              "node":{"name":"node-1","uid":"…"},
//              "pod":{"name":"coordinator-0","uid":"…"},
//              "serviceaccount":{"name":"coordinator","uid":"…"}},
//            "sub":"system:serviceaccount:default:coordinator"}
import { createHash, randomUUID } from "node:crypto";
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from "jose";

export const ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface SigningKey {
  alg: "RS256" | "ES256";
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function signingKey(alg: "RS256" | "ES256" = "RS256"): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  // The apiserver's key id: base64url(SHA-256(DER(public key))).
  const der = Buffer.from((await exportSPKI(publicKey)).replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
  const kid = createHash("sha256").update(der).digest("base64url");
  // The apiserver publishes use "sig" and the algorithm with each key.
  const jwk = { ...(await exportJWK(publicKey)), kid, use: "sig", alg };
  return { alg, kid, privateKey, jwk };
}

export function jwks(...keys: SigningKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => k.jwk) };
}

export interface PodClaims {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
}

export const POD: PodClaims = {
  namespace: "default",
  serviceAccount: "coordinator",
  podName: "coordinator-0",
  podUid: "0b6e4a6c-2c4e-4b44-9a43-7c0e3f0a1d01",
};

export interface TokenOptions {
  pod?: Partial<PodClaims>;
  audience?: string | string[];
  issuer?: string;
  /** Seconds relative to now. */
  issuedAt?: number;
  notBefore?: number;
  expiresIn?: number;
  /** Replace or drop (undefined) top-level claims after the layout is built. */
  override?: Record<string, unknown>;
  kid?: string;
}

/** Signs a token the way the kube-apiserver does for a pod-bound TokenRequest. */
export async function podToken(key: SigningKey, opts: TokenOptions = {}): Promise<string> {
  const pod = { ...POD, ...opts.pod };
  const now = Math.floor(Date.now() / 1000);
  const iat = now + (opts.issuedAt ?? 0);
  const payload: Record<string, unknown> = {
    aud: Array.isArray(opts.audience) ? opts.audience : [opts.audience ?? "coordinator-ha"],
    exp: now + (opts.expiresIn ?? 3600),
    iat,
    iss: opts.issuer ?? ISSUER,
    jti: randomUUID(),
    "kubernetes.io": {
      namespace: pod.namespace,
      node: { name: "node-1", uid: "5d1a3a3e-8d9b-4a55-9a51-1f3e0d3c2b10" },
      pod: { name: pod.podName, uid: pod.podUid },
      serviceaccount: { name: pod.serviceAccount, uid: "c3f1b0b4-6f3a-4f0e-8e53-2b9e1c7a4d22" },
    },
    nbf: now + (opts.notBefore ?? 0),
    sub: `system:serviceaccount:${pod.namespace}:${pod.serviceAccount}`,
  };
  for (const [claim, value] of Object.entries(opts.override ?? {})) {
    if (value === undefined) delete payload[claim];
    else payload[claim] = value;
  }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: opts.kid ?? key.kid })
    .sign(key.privateKey);
}
