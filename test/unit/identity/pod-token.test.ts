import { beforeAll, describe, expect, it } from "vitest";
import { SignJWT, UnsecuredJWT, type JSONWebKeySet } from "jose";
import {
  cachedJwksSource,
  createPodTokenVerifier,
  IdentityError,
  type JwksSource,
  type PodTokenVerifier,
} from "../../../src/identity/index.ts";
import { PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE } from "../../../src/names.ts";
import { ISSUER, jwks, podToken, POD, signingKey, type SigningKey } from "./issuer.ts";

let rsa: SigningKey;
let ec: SigningKey;
let other: SigningKey;

beforeAll(async () => {
  [rsa, ec, other] = await Promise.all([signingKey("RS256"), signingKey("ES256"), signingKey("RS256")]);
});

/** A key source over a mutable key set that counts fetches (rate limit: see jwks.test.ts). */
function keySource(initial: JSONWebKeySet) {
  const state = { set: initial, fetches: 0 };
  const source: JwksSource = cachedJwksSource(
    async () => {
      state.fetches++;
      return state.set;
    },
    { minRefreshIntervalMs: 0 },
  );
  return { state, source };
}

function verifierFor(keys: JwksSource): PodTokenVerifier {
  return createPodTokenVerifier({ issuer: ISSUER, audience: TOKEN_AUDIENCE, keys });
}

async function refusal(verifier: PodTokenVerifier, token: string): Promise<string> {
  const err = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IdentityError);
  return (err as IdentityError).reason;
}

describe("createPodTokenVerifier", () => {
  it("accepts a pod-bound RS256 token and returns the pod", async () => {
    const v = verifierFor(keySource(jwks(rsa, ec)).source);
    await expect(v.verify(await podToken(rsa))).resolves.toEqual(POD);
  });

  it("accepts an ES256 token (apiserver with an ECDSA signing key)", async () => {
    const v = verifierFor(keySource(jwks(rsa, ec)).source);
    await expect(v.verify(await podToken(ec))).resolves.toEqual(POD);
  });

  it.each([600, 3600, 3660])("accepts a token that lives %i s (projected: 3600 s, plus slack)", async (s) => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    await expect(v.verify(await podToken(rsa, { expiresIn: s }))).resolves.toEqual(POD);
  });

  it("accepts a longer lifetime where the server allows it", async () => {
    const v = createPodTokenVerifier({
      issuer: ISSUER,
      audience: TOKEN_AUDIENCE,
      keys: keySource(jwks(rsa)).source,
      maxLifetimeSeconds: 2 * 86400,
    });
    await expect(v.verify(await podToken(rsa, { expiresIn: 48 * 3600 }))).resolves.toEqual(POD);
  });

  it("accepts a token whose audiences include coordinator-ha", async () => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    await expect(v.verify(await podToken(rsa, { audience: ["vault", TOKEN_AUDIENCE] }))).resolves.toEqual(
      POD,
    );
  });

  it.each([
    ["wrong audience", { audience: "https://kubernetes.default.svc" }, "WrongAudience"],
    ["wrong issuer", { issuer: "https://evil.example" }, "WrongIssuer"],
    ["expired", { issuedAt: -7200, notBefore: -7200, expiresIn: -3600 }, "Expired"],
    ["not yet valid", { notBefore: 600 }, "NotYetValid"],
    ["issued in the future", { issuedAt: 600, notBefore: 0 }, "NotYetValid"],
    // `kubectl create token --duration 48h`: bound to a pod, but outliving the pod's own tokens.
    ["that lives 48 hours", { expiresIn: 48 * 3600 }, "LifetimeTooLong"],
    ["that lives a minute longer than projected tokens plus slack", { expiresIn: 3661 }, "LifetimeTooLong"],
    ["without exp", { override: { exp: undefined } }, "Malformed"],
    [
      "not bound to a pod",
      {
        override: {
          "kubernetes.io": { namespace: "default", serviceaccount: { name: "coordinator", uid: "u" } },
        },
      },
      "NotPodBound",
    ],
    [
      "bound to a pod without uid",
      {
        override: {
          "kubernetes.io": {
            namespace: "default",
            pod: { name: "coordinator-0" },
            serviceaccount: { name: "coordinator" },
          },
        },
      },
      "NotPodBound",
    ],
    ["without the kubernetes.io claim", { override: { "kubernetes.io": undefined } }, "NotPodBound"],
    [
      "whose sub names another service account",
      { override: { sub: "system:serviceaccount:default:admin" } },
      "SubjectMismatch",
    ],
  ] as const)("refuses a token %s", async (_name, opts, reason) => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    expect(await refusal(v, await podToken(rsa, opts))).toBe(reason);
  });

  // The sidecar holds two tokens of the same pod: one for the handler, one for its peers.
  // Each verifier must take only its own, or a peer could replay what it was shown.
  it.each([
    ["the handler's", TOKEN_AUDIENCE, PEER_TOKEN_AUDIENCE],
    ["a peer's", PEER_TOKEN_AUDIENCE, TOKEN_AUDIENCE],
  ])(
    "refuses the other audience of coordinator-ha as %s verifier, and says which it expected",
    async (_who, audience, other) => {
      const v = createPodTokenVerifier({ issuer: ISSUER, audience, keys: keySource(jwks(rsa)).source });
      await expect(v.verify(await podToken(rsa, { audience }))).resolves.toEqual(POD);
      const err = await v.verify(await podToken(rsa, { audience: other })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IdentityError);
      expect((err as IdentityError).reason).toBe("WrongAudience");
      expect((err as IdentityError).message).toBe(
        `token is not meant for this server: expected audience ${audience}, got ${other}`,
      );
    },
  );

  it("refuses a token signed by a key the issuer does not publish, after one refresh", async () => {
    const { state, source } = keySource(jwks(rsa));
    const v = verifierFor(source);
    await v.verify(await podToken(rsa));
    expect(await refusal(v, await podToken(other))).toBe("UnknownKey");
    expect(state.fetches).toBe(2);
  });

  it("accepts an unknown key id once a refresh publishes the new key (rotation)", async () => {
    const { state, source } = keySource(jwks(rsa));
    const v = verifierFor(source);
    await v.verify(await podToken(rsa));
    state.set = jwks(rsa, other);
    await expect(v.verify(await podToken(other))).resolves.toEqual(POD);
    expect(state.fetches).toBe(2);
  });

  it("refuses a token whose signature does not match its key id", async () => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    // Signed by another key, but claiming the published key's id.
    expect(await refusal(v, await podToken(other, { kid: rsa.kid }))).toBe("BadSignature");
  });

  it("refuses a token whose payload was altered after signing", async () => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    const [header, , signature] = (await podToken(rsa)).split(".");
    const forged = await podToken(rsa, { pod: { podName: "coordinator-1" } });
    const payload = forged.split(".")[1];
    expect(await refusal(v, `${header}.${payload}.${signature}`)).toBe("BadSignature");
  });

  it("refuses an unsigned token (alg none)", async () => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    const token = new UnsecuredJWT({ iss: ISSUER, aud: TOKEN_AUDIENCE }).encode();
    expect(await refusal(v, token)).toBe("AlgorithmNotAllowed");
  });

  it("refuses an HMAC token keyed with a public key (algorithm confusion)", async () => {
    const v = verifierFor(keySource(jwks(rsa)).source);
    const token = await new SignJWT({ iss: ISSUER, aud: TOKEN_AUDIENCE })
      .setProtectedHeader({ alg: "HS256", kid: rsa.kid })
      .sign(new TextEncoder().encode(JSON.stringify(rsa.jwk)));
    expect(await refusal(v, token)).toBe("AlgorithmNotAllowed");
  });

  it.each([
    ["", "empty"],
    ["not-a-jwt", "garbage"],
    ["a.b.c", "three garbage parts"],
    ["eyJhbGciOiJSUzI1NiJ9.e30", "two parts"],
  ])("refuses a malformed token (%s: %s)", async (token) => {
    const { state, source } = keySource(jwks(rsa));
    expect(await refusal(verifierFor(source), token)).toBe("Malformed");
    expect(state.fetches).toBeLessThanOrEqual(1);
  });

  it("lets a key-source failure through as a non-identity error", async () => {
    const v = verifierFor(
      cachedJwksSource(async () => {
        throw new Error("apiserver unreachable");
      }),
    );
    const err = await v.verify(await podToken(rsa)).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(IdentityError);
    expect(String(err)).toContain("apiserver unreachable");
  });
});
