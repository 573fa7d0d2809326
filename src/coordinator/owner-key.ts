// The workload owner's key, as Contrast has it: a manifest may list
// `workloadOwnerKeyDigests` (lowercase hex SHA-256 of the owner's public key in SPKI DER), and
// only the holder of such a key may replace the manifest. The key file is an ECDSA P-256 or
// P-384 private key in PEM, like Contrast's `workload-owner.pem`.
//
// Possession is proven with a signature over an update message that names the state it
// replaces (the bundle digest that `GET /v1/manifest` reports) and the new manifest's digest.
// The parent digest is the nonce: once the update is in, the state has another digest, so the
// same signature cannot be replayed; it covers the random seed, so no other Coordinator has it.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { manifestDigest, type Manifest } from "./state.ts";

export const OWNER_KEY_DIGESTS_FIELD = "workloadOwnerKeyDigests";

const KEY_DIGEST = /^[0-9a-f]{64}$/;
/** The curves Contrast's workload owner keys use, with the hash that goes with each. */
const HASH_OF_CURVE: Readonly<Record<string, string>> = { "P-256": "sha256", "P-384": "sha384" };
const MESSAGE_PREFIX = "coordinator-ha manifest update v1";

/** What `set --workload-owner-key` sends beside the manifest. */
export interface UpdateProof {
  /** The state digest this update replaces (from `GET /v1/manifest`). */
  parent: string;
  /** The owner's public key, PEM SubjectPublicKeyInfo. */
  ownerKey: string;
  /** ECDSA over updateMessage, DER, base64. */
  signature: string;
}

export class OwnerKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OwnerKeyError";
  }
}

/**
 * The owner key digests a manifest lists: [] when it has none (it cannot be updated), an
 * error message when the field is there but malformed.
 */
export function ownerKeyDigests(manifest: Manifest): { digests: string[] } | { error: string } {
  const value = manifest[OWNER_KEY_DIGESTS_FIELD];
  if (value === undefined) return { digests: [] };
  if (!Array.isArray(value) || !value.every((d) => typeof d === "string" && KEY_DIGEST.test(d))) {
    return {
      error: `${OWNER_KEY_DIGESTS_FIELD} must be a list of lowercase hex SHA-256 digests (64 characters) of the owners' public keys in SPKI DER`,
    };
  }
  return { digests: value as string[] };
}

/** Lowercase hex SHA-256 of the public key in SPKI DER, as the manifest lists it. */
export function ownerKeyDigest(key: KeyObject): string {
  const spki = (key.type === "private" ? createPublicKey(key) : key).export({ format: "der", type: "spki" });
  return createHash("sha256").update(spki).digest("hex");
}

/** The exact bytes an owner signs. */
export function updateMessage(parent: string, manifest: Manifest): Buffer {
  return Buffer.from(`${MESSAGE_PREFIX}\nparent ${parent}\nmanifest ${manifestDigest(manifest)}\n`);
}

/** Reads a workload owner key file's content: an ECDSA P-256 or P-384 private key in PEM. */
export function readOwnerPrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new OwnerKeyError("not a PEM private key");
  }
  hashFor(key);
  return key;
}

export function signUpdate(privateKey: KeyObject, parent: string, manifest: Manifest): UpdateProof {
  return {
    parent,
    ownerKey: createPublicKey(privateKey).export({ format: "pem", type: "spki" }).toString(),
    signature: sign(hashFor(privateKey), updateMessage(parent, manifest), privateKey).toString("base64"),
  };
}

export type ProofCheck =
  | { ok: true; keyDigest: string }
  /** 400: the proof is malformed; 403: well-formed, but not a listed key or not its signature. */
  | { ok: false; status: 400 | 403; error: string };

/** Checks that `proof` is a listed owner's signature over (proof.parent, manifest). */
export function checkProof(proof: UpdateProof, manifest: Manifest, listed: readonly string[]): ProofCheck {
  let key: KeyObject;
  try {
    key = createPublicKey(proof.ownerKey);
  } catch {
    return { ok: false, status: 400, error: "update.ownerKey is not a PEM public key" };
  }
  let hash: string;
  try {
    hash = hashFor(key);
  } catch (err) {
    return { ok: false, status: 400, error: `update.ownerKey: ${(err as Error).message}` };
  }
  const keyDigest = ownerKeyDigest(key);
  if (!listed.includes(keyDigest)) {
    return {
      ok: false,
      status: 403,
      error: `the workload owner key ${keyDigest} is not listed in the current manifest's ${OWNER_KEY_DIGESTS_FIELD}; use a listed key`,
    };
  }
  const signature = Buffer.from(proof.signature, "base64");
  if (signature.length === 0 || !verify(hash, updateMessage(proof.parent, manifest), key, signature)) {
    return {
      ok: false,
      status: 403,
      error:
        "the signature does not prove possession of the workload owner key for this update; sign it with the key's private half (coordinator-ha set does)",
    };
  }
  return { ok: true, keyDigest };
}

function hashFor(key: KeyObject): string {
  const curve = key.asymmetricKeyType === "ec" ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const name = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
  if (!name) {
    throw new OwnerKeyError(
      `a workload owner key is an ECDSA P-256 or P-384 key, not ${key.asymmetricKeyType}${curve ? ` ${curve}` : ""}`,
    );
  }
  return HASH_OF_CURVE[name]!;
}
