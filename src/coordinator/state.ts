// The reference Coordinator's secret state and what it derives from it. Like Contrast's
// Coordinator, everything secret follows from one random seed: every replica that holds
// the same seed derives the same key, which is what a user checks after a recovery.
import { createHash, createPrivateKey, createPublicKey, hkdfSync, randomBytes } from "node:crypto";

/** The one file the Coordinator keeps in its state directory. */
export const STATE_FILE = "coordinator.json";

/** A manifest is the user's JSON object; the reference Coordinator only stores it. */
export type Manifest = Record<string, unknown>;

/**
 * One step of the manifest history, as Contrast keeps it: the manifest it replaced (null for
 * the first `set`) and the one it set, each as manifestDigest names it.
 */
export interface Transition {
  previous: string | null;
  new: string;
}

export interface CoordinatorState {
  manifest: Manifest;
  /** 32 random bytes; never logged, never leaves the state directory but in a JWE. */
  seed: Buffer;
  /** Every `set` so far, oldest first; the last one's `new` is the digest of `manifest`. */
  history: Transition[];
}

const SEED_BYTES = 32;
/** Version 2 added the history; a version 1 file (no history) reads as one first `set`. */
const FORMAT_VERSION = 2;
const MANIFEST_DIGEST = /^sha256:[0-9a-f]{64}$/;
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

/**
 * `sha256:` + hex of SHA-256 over the manifest's JSON text (JSON.stringify of the parsed
 * object, which keeps the key order it arrived with). The history names manifests by it, and
 * a workload owner signs it.
 */
export function manifestDigest(manifest: Manifest): string {
  return `sha256:${createHash("sha256").update(JSON.stringify(manifest)).digest("hex")}`;
}

export function newState(manifest: Manifest): CoordinatorState {
  return {
    manifest,
    seed: randomBytes(SEED_BYTES),
    history: [{ previous: null, new: manifestDigest(manifest) }],
  };
}

/** The state after an update to `manifest`: the same seed, so the same key; one more transition. */
export function updatedState(state: CoordinatorState, manifest: Manifest): CoordinatorState {
  return {
    manifest,
    seed: state.seed,
    history: [...state.history, { previous: manifestDigest(state.manifest), new: manifestDigest(manifest) }],
  };
}

export function encodeState(state: CoordinatorState): Buffer {
  return Buffer.from(
    `${JSON.stringify({
      version: FORMAT_VERSION,
      seed: state.seed.toString("base64"),
      manifest: state.manifest,
      history: state.history,
    })}\n`,
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
  const version = parsed["version"];
  if (version !== 1 && version !== FORMAT_VERSION) {
    throw new StateFormatError(
      `${STATE_FILE} has version ${JSON.stringify(version)}, expected 1 or ${FORMAT_VERSION}`,
    );
  }
  const seed = typeof parsed["seed"] === "string" ? Buffer.from(parsed["seed"], "base64") : undefined;
  if (seed?.length !== SEED_BYTES || seed.toString("base64") !== parsed["seed"]) {
    throw new StateFormatError(`${STATE_FILE} has no valid ${SEED_BYTES}-byte seed`);
  }
  const manifest = parsed["manifest"];
  if (!isManifest(manifest)) throw new StateFormatError(`${STATE_FILE} has no manifest object`);
  if (version === 1) return { manifest, seed, history: [{ previous: null, new: manifestDigest(manifest) }] };
  const history = parsed["history"];
  if (!Array.isArray(history) || history.length === 0 || !history.every(isTransition)) {
    throw new StateFormatError(`${STATE_FILE} has no valid history (a non-empty list of transitions)`);
  }
  return { manifest, seed, history };
}

function isTransition(value: unknown): value is Transition {
  if (!isManifest(value)) return false;
  const previous = value["previous"];
  return (
    (previous === null || (typeof previous === "string" && MANIFEST_DIGEST.test(previous))) &&
    typeof value["new"] === "string" &&
    MANIFEST_DIGEST.test(value["new"])
  );
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
