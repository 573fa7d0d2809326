// The encrypted state transfer between two sidecars (DESIGN.md, Trust):
//
// 1. the recovering sidecar makes an ephemeral ECDH P-256 key pair for this one attempt and
//    sends the public key (JWK) to the peer;
// 2. the peer answers with its bundle's encoding as a compact JWE (alg ECDH-ES, enc A256GCM)
//    addressed to that key, plus the bundle's digest;
// 3. the receiver decrypts, decodes, and accepts the bundle only when its digest equals the
//    digest the handler reported for that peer.
//
// ECDH-ES does not authenticate the sender: anyone can encrypt to a public key. What makes
// the content trustworthy is step 3 (the handler only reports what a peer's sidecar
// confirmed with its pod-bound identity), and the pinned TLS certificate of the peer API.
// The JWE keeps the state confidential end to end and bound to this attempt's key.
// jose by subpath, not its index, which would load all of jose (see identity/pod-token.ts).
import type { CryptoKey, JWK } from "jose";
import { compactDecrypt } from "jose/jwe/compact/decrypt";
import { CompactEncrypt } from "jose/jwe/compact/encrypt";
import { exportJWK } from "jose/key/export";
import { generateKeyPair } from "jose/key/generate/keypair";
import { importJWK } from "jose/key/import";
import { BundleError, decodeBundle, digestOf, MAX_BUNDLE_BYTES, type Bundle } from "../state/bundle.ts";
import { installNativeBase64 } from "./native-base64.ts";

// jose's base64 runs on Node's native codec instead of its JavaScript fallback: six times faster
// and less than half the memory for a large state (native-base64.ts).
installNativeBase64();

/** Marks the plaintext as a bundle encoding, so that no other JWE of ours passes for one. */
export const BUNDLE_CONTENT_TYPE = "application/vnd.coordinator-ha.state-bundle";
const ALG = "ECDH-ES";
const ENC = "A256GCM";

/** base64url grows by 4/3; the header (with the sender's epk) adds well under 1 KiB. */
export const MAX_JWE_LENGTH = Math.ceil((MAX_BUNDLE_BYTES * 4) / 3) + 4096;

/** Why a transfer failed. Short codes for logs; messages never contain state. */
export const TransferReason = {
  BadKey: "BadKey",
  Malformed: "Malformed",
  Oversized: "Oversized",
  DecryptFailed: "DecryptFailed",
  BadBundle: "BadBundle",
  EmptyBundle: "EmptyBundle",
  DigestMismatch: "DigestMismatch",
} as const;
export type TransferReason = (typeof TransferReason)[keyof typeof TransferReason];

export class TransferError extends Error {
  readonly reason: TransferReason;
  constructor(reason: TransferReason, message: string) {
    super(message);
    this.name = "TransferError";
    this.reason = reason;
  }
}

export interface EphemeralKey {
  privateKey: CryptoKey;
  /** What the receiver sends to the peer: {kty: "EC", crv: "P-256", x, y}. */
  publicJwk: JWK;
}

/** A fresh key pair for one attempt; the private key never leaves this process. */
export async function ephemeralKey(): Promise<EphemeralKey> {
  const { publicKey, privateKey } = await generateKeyPair(ALG, { crv: "P-256" });
  const { kty, crv, x, y } = await exportJWK(publicKey);
  return { privateKey, publicJwk: { kty, crv, x, y } };
}

/**
 * Checks the key a requester sent: an EC P-256 public key and nothing else (a private
 * key in a request means a broken client; it is refused rather than used).
 */
export async function recipientKey(value: unknown): Promise<CryptoKey> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TransferError(TransferReason.BadKey, "publicKey must be a JWK object");
  }
  const jwk = value as Record<string, unknown>;
  if (jwk["kty"] !== "EC" || jwk["crv"] !== "P-256") {
    throw new TransferError(
      TransferReason.BadKey,
      'publicKey must be an EC key on curve P-256 ("kty":"EC","crv":"P-256")',
    );
  }
  if ("d" in jwk)
    throw new TransferError(
      TransferReason.BadKey,
      "publicKey carries a private key (d); send only the public part",
    );
  const coordinate = /^[A-Za-z0-9_-]{43}$/;
  if (
    typeof jwk["x"] !== "string" ||
    typeof jwk["y"] !== "string" ||
    !coordinate.test(jwk["x"]) ||
    !coordinate.test(jwk["y"])
  ) {
    throw new TransferError(TransferReason.BadKey, "publicKey x and y must be 32-byte base64url coordinates");
  }
  try {
    // WebCrypto checks that the point lies on the curve (no invalid-curve attacks).
    return (await importJWK({ kty: "EC", crv: "P-256", x: jwk["x"], y: jwk["y"] }, ALG)) as CryptoKey;
  } catch {
    throw new TransferError(TransferReason.BadKey, "publicKey is not a point on P-256");
  }
}

/** Encrypts a bundle encoding to the requester's key. */
export async function sealBundle(encoding: Uint8Array, recipient: CryptoKey): Promise<string> {
  return new CompactEncrypt(encoding)
    .setProtectedHeader({ alg: ALG, enc: ENC, cty: BUNDLE_CONTENT_TYPE })
    .encrypt(recipient);
}

/**
 * Decrypts a peer's answer with this attempt's key and returns the bundle, only if it is
 * whole and its digest is `expectedDigest`. Throws TransferError otherwise.
 */
export async function openBundle(jwe: unknown, key: EphemeralKey, expectedDigest: string): Promise<Bundle> {
  if (typeof jwe !== "string") throw new TransferError(TransferReason.Malformed, "jwe must be a string");
  // Checked before any work: a peer must not make us decrypt (or buffer) an unbounded blob.
  if (jwe.length > MAX_JWE_LENGTH) {
    throw new TransferError(TransferReason.Oversized, `jwe is longer than ${MAX_JWE_LENGTH} characters`);
  }
  let plaintext: Uint8Array;
  try {
    const result = await compactDecrypt(jwe, key.privateKey, {
      keyManagementAlgorithms: [ALG],
      contentEncryptionAlgorithms: [ENC],
    });
    if (result.protectedHeader.cty !== BUNDLE_CONTENT_TYPE) {
      throw new TransferError(TransferReason.Malformed, "jwe does not carry a state bundle (cty)");
    }
    plaintext = result.plaintext;
  } catch (err) {
    if (err instanceof TransferError) throw err;
    throw new TransferError(
      TransferReason.DecryptFailed,
      `jwe cannot be decrypted with this attempt's key: ${(err as Error).message}`,
    );
  }
  if (plaintext.length > MAX_BUNDLE_BYTES) {
    throw new TransferError(TransferReason.Oversized, `bundle is larger than ${MAX_BUNDLE_BYTES} bytes`);
  }
  let bundle: Bundle;
  try {
    bundle = decodeBundle(plaintext);
  } catch (err) {
    if (err instanceof BundleError) throw new TransferError(TransferReason.BadBundle, err.message);
    throw err;
  }
  if (bundle.files.length === 0) throw new TransferError(TransferReason.EmptyBundle, "bundle holds no files");
  const digest = digestOf(plaintext);
  if (digest !== expectedDigest) {
    throw new TransferError(
      TransferReason.DigestMismatch,
      `bundle digest ${digest} is not the digest ${expectedDigest} the handler reported for this peer`,
    );
  }
  return bundle;
}
