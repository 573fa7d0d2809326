// The reference Coordinator's secret state and what it derives from it. Like Contrast's
// Coordinator, everything secret follows from one random seed: every replica that holds
// the same seed derives the same key, which is what a user checks after a recovery.
import { createPrivateKey, createPublicKey, hkdfSync, randomBytes } from "node:crypto";

/** The one file the Coordinator keeps in its state directory. */
export const STATE_FILE = "coordinator.json";

/** A manifest is the user's JSON object; the reference Coordinator only stores it. */
export type Manifest = Record<string, unknown>;

export interface CoordinatorState {
  manifest: Manifest;
  /** 32 random bytes; never logged, never leaves the state directory but in a JWE. */
  seed: Buffer;
}

const SEED_BYTES = 32;
const FORMAT_VERSION = 1;
/** Domain separation: the seed may later key other things than this signing key. */
const SIGNING_KEY_INFO = "coordinator-ha reference coordinator ed25519 signing key v1";
/** PKCS#8 prefix of an Ed25519 private key; the 32-byte private key follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export class StateFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateFormatError";
  }
}

export function isManifest(value: unknown): value is Manifest {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function newState(manifest: Manifest): CoordinatorState {
  return { manifest, seed: randomBytes(SEED_BYTES) };
}

export function encodeState(state: CoordinatorState): Buffer {
  return Buffer.from(
    `${JSON.stringify({ version: FORMAT_VERSION, seed: state.seed.toString("base64"), manifest: state.manifest })}\n`,
  );
}

export function decodeState(bytes: Buffer): CoordinatorState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new StateFormatError(`${STATE_FILE} is not JSON`);
  }
  if (!isManifest(parsed)) throw new StateFormatError(`${STATE_FILE} is not a JSON object`);
  if (parsed["version"] !== FORMAT_VERSION) {
    throw new StateFormatError(`${STATE_FILE} has version ${JSON.stringify(parsed["version"])}, expected 1`);
  }
  const seed = typeof parsed["seed"] === "string" ? Buffer.from(parsed["seed"], "base64") : undefined;
  if (seed?.length !== SEED_BYTES || seed.toString("base64") !== parsed["seed"]) {
    throw new StateFormatError(`${STATE_FILE} has no valid ${SEED_BYTES}-byte seed`);
  }
  if (!isManifest(parsed["manifest"])) throw new StateFormatError(`${STATE_FILE} has no manifest object`);
  return { manifest: parsed["manifest"], seed };
}

/** The Ed25519 public key derived from the seed, as a PEM SubjectPublicKeyInfo. */
export function publicKeyPem(seed: Buffer): string {
  const privateKey = Buffer.from(hkdfSync("sha256", seed, Buffer.alloc(0), SIGNING_KEY_INFO, 32));
  const key = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, privateKey]),
    format: "der",
    type: "pkcs8",
  });
  return createPublicKey(key).export({ format: "pem", type: "spki" }).toString();
}
