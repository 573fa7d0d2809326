// Verifies a projected, pod-bound service-account token and returns the pod it speaks for.
// The handler (audience coordinator-ha) and the sidecar's peer API (audience
// coordinator-ha-peer) both call this, each with its own audience, so that a token one of
// them receives is worthless to the other; they then check the pod itself (exists with that
// uid, gated, selected), which a token alone cannot prove.
//
//   const verifier = createPodTokenVerifier({ issuer, audience: TOKEN_AUDIENCE, keys });
//   const who = await verifier.verify(token); // PodIdentity, or throws IdentityError
//
// Any other error than IdentityError means the issuer's keys could not be fetched: that
// is the server's problem ("try again later", 503), not a verdict on the token.
// jose by subpath, not its index: the index loads all of jose (about 8 MB of resident memory
// in every sidecar, docs/performance.md) for the few functions used here.
import type { JSONWebKeySet } from "jose";
import { decodeProtectedHeader } from "jose/decode/protected_header";
import * as errors from "jose/errors";
import { createLocalJWKSet } from "jose/jwks/local";
import { jwtVerify } from "jose/jwt/verify";
import { TOKEN_EXPIRATION_SECONDS } from "../names.ts";
import type { JwksSource } from "./jwks.ts";

export interface PodIdentity {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
}

/** Why a token was refused. Short, stable codes for logs, metrics and error bodies. */
export const IdentityReason = {
  Malformed: "Malformed",
  AlgorithmNotAllowed: "AlgorithmNotAllowed",
  UnknownKey: "UnknownKey",
  BadSignature: "BadSignature",
  WrongIssuer: "WrongIssuer",
  WrongAudience: "WrongAudience",
  Expired: "Expired",
  NotYetValid: "NotYetValid",
  LifetimeTooLong: "LifetimeTooLong",
  NotPodBound: "NotPodBound",
  SubjectMismatch: "SubjectMismatch",
} as const;
export type IdentityReason = (typeof IdentityReason)[keyof typeof IdentityReason];

export class IdentityError extends Error {
  readonly reason: IdentityReason;
  constructor(reason: IdentityReason, message: string) {
    super(message);
    this.name = "IdentityError";
    this.reason = reason;
  }
}

export interface PodTokenVerifier {
  /** Resolves to the pod the token is bound to; throws IdentityError when it is refused. */
  verify(token: string): Promise<PodIdentity>;
}

export interface PodTokenVerifierOptions {
  issuer: string;
  audience: string;
  keys: JwksSource;
  /** Accepted clock skew between the apiserver and us (default 30 s). */
  clockToleranceSeconds?: number;
  /**
   * The longest lifetime (exp - iat) accepted (default: the webhook's projected lifetime,
   * TOKEN_EXPIRATION_SECONDS, plus MAX_LIFETIME_SLACK_SECONDS). The kubelet asks for exactly
   * the lifetime in the pod spec, and the apiserver never lengthens it for our audiences (it
   * extends only tokens for its own), so a longer token was minted by other means (e.g.
   * `kubectl create token --duration 48h`) and would outlive the pod it speaks for.
   */
  maxLifetimeSeconds?: number;
}

/** Room for an apiserver that rounds or a kubelet that asks for a few seconds more. */
export const MAX_LIFETIME_SLACK_SECONDS = 60;

// The algorithms the kube-apiserver signs service-account tokens with (RSA or ECDSA
// signing keys). Pinning them refuses "none" and HMAC tricks before any key is looked at.
const ALGORITHMS = ["RS256", "ES256"];

export function createPodTokenVerifier(opts: PodTokenVerifierOptions): PodTokenVerifier {
  const tolerance = opts.clockToleranceSeconds ?? 30;
  const maxLifetime = opts.maxLifetimeSeconds ?? TOKEN_EXPIRATION_SECONDS + MAX_LIFETIME_SLACK_SECONDS;
  // createLocalJWKSet parses and imports keys lazily; rebuild it only when the key set changes.
  let cached: { jwks: JSONWebKeySet; local: ReturnType<typeof createLocalJWKSet> } | undefined;
  const localSet = (jwks: JSONWebKeySet) => {
    if (cached?.jwks !== jwks) cached = { jwks, local: createLocalJWKSet(jwks) };
    return cached.local;
  };

  const verifyWith = (token: string, jwks: JSONWebKeySet) =>
    jwtVerify(token, localSet(jwks), {
      issuer: opts.issuer,
      audience: opts.audience,
      algorithms: ALGORITHMS,
      clockTolerance: tolerance,
      requiredClaims: ["exp", "iat", "sub"],
    });

  return {
    async verify(token) {
      // Decoding first turns garbage into a clear 401 without touching the key source.
      try {
        decodeProtectedHeader(token);
      } catch {
        throw new IdentityError(IdentityReason.Malformed, "token is not a compact JWS");
      }
      let result;
      try {
        try {
          result = await verifyWith(token, await opts.keys.get());
        } catch (err) {
          // A key the cached set does not know: the issuer may have rotated its keys.
          if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
          result = await verifyWith(token, await opts.keys.refresh());
        }
      } catch (err) {
        throw toIdentityError(err, opts.audience);
      }
      const now = Math.floor(Date.now() / 1000);
      const { iat, exp } = result.payload;
      // requiredClaims and jose's checks make both numbers here.
      if (typeof iat !== "number" || typeof exp !== "number") {
        throw new IdentityError(IdentityReason.Malformed, "token has no numeric iat and exp");
      }
      if (iat > now + tolerance) {
        throw new IdentityError(IdentityReason.NotYetValid, "token was issued in the future");
      }
      if (exp - iat > maxLifetime) {
        throw new IdentityError(
          IdentityReason.LifetimeTooLong,
          `token lives ${exp - iat} s; this server accepts at most ${maxLifetime} s (projected tokens live ${TOKEN_EXPIRATION_SECONDS} s)`,
        );
      }
      return podIdentity(result.payload);
    },
  };
}

/** Reads the `kubernetes.io` claim that the apiserver writes into a pod-bound token. */
function podIdentity(payload: Record<string, unknown>): PodIdentity {
  const kube = asRecord(payload["kubernetes.io"]);
  const namespace = kube?.["namespace"];
  const serviceAccount = asRecord(kube?.["serviceaccount"])?.["name"];
  const pod = asRecord(kube?.["pod"]);
  const podName = pod?.["name"];
  const podUid = pod?.["uid"];
  if (!isName(namespace) || !isName(serviceAccount)) {
    throw new IdentityError(IdentityReason.NotPodBound, "token carries no service-account identity");
  }
  if (!isName(podName) || !isName(podUid)) {
    throw new IdentityError(IdentityReason.NotPodBound, "token is not bound to a pod");
  }
  if (payload["sub"] !== `system:serviceaccount:${namespace}:${serviceAccount}`) {
    throw new IdentityError(
      IdentityReason.SubjectMismatch,
      "token subject does not match its service account",
    );
  }
  return { namespace, serviceAccount, podName, podUid };
}

function toIdentityError(err: unknown, audience: string): unknown {
  if (err instanceof errors.JWTExpired) return new IdentityError(IdentityReason.Expired, "token has expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case "iss":
        return new IdentityError(IdentityReason.WrongIssuer, "token was issued by another issuer");
      case "aud":
        // Both audiences are coordinator-ha's own: say which one this server wants and which
        // one came, so that a token sent to the wrong server is recognized as such.
        return new IdentityError(
          IdentityReason.WrongAudience,
          `token is not meant for this server: expected audience ${audience}, got ${audiencesOf(err.payload)}`,
        );
      case "nbf":
        return new IdentityError(IdentityReason.NotYetValid, "token is not valid yet");
      default:
        return new IdentityError(IdentityReason.Malformed, `token claim "${err.claim}" is invalid`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new IdentityError(
      IdentityReason.AlgorithmNotAllowed,
      "token is signed with an unsupported algorithm",
    );
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new IdentityError(
      IdentityReason.UnknownKey,
      "token is signed with a key the issuer does not publish",
    );
  }
  // The apiserver always names its key (kid); a token that matches several keys names none.
  if (err instanceof errors.JWKSMultipleMatchingKeys) {
    return new IdentityError(IdentityReason.UnknownKey, "token does not name the key it is signed with");
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new IdentityError(IdentityReason.BadSignature, "token signature is invalid");
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) {
    return new IdentityError(IdentityReason.Malformed, "token is malformed");
  }
  // Key-source failures and JWKSInvalid (the issuer published garbage) are not the caller's fault.
  return err;
}

/** The token's audiences for a message; the signature has been verified, so the issuer wrote them. */
function audiencesOf(payload: Record<string, unknown>): string {
  const aud = payload["aud"];
  const list = (Array.isArray(aud) ? aud : [aud]).filter((a): a is string => typeof a === "string");
  if (list.length === 0) return "none";
  const text = list.join(", ");
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}
