// What the reference Coordinator does with `POST /v1/manifest` on an initialized state: a
// pure decision over the current state and the request, so that every rule is one row of a
// table test. Committing the update (through the sidecar) is the state holder's job.
import { isDigest } from "../state/bundle.ts";
import { checkProof, OWNER_KEY_DIGESTS_FIELD, ownerKeyDigests, type UpdateProof } from "./owner-key.ts";
import { isManifest, updatedState, type CoordinatorState, type Manifest } from "./state.ts";

export interface ManifestRequest {
  manifest: Manifest;
  /** Present when the user updates with a workload owner key (`set --workload-owner-key`). */
  update?: UpdateProof;
}

export type UpdateDecision =
  /** The manifest is the current one: a retry whose first answer was lost. Nothing to do. */
  | { kind: "same" }
  | { kind: "update"; state: CoordinatorState; keyDigest: string }
  | { kind: "refuse"; status: 400 | 403 | 409; error: string };

/** Parses a request body; a string says what is wrong with it (a 400). */
export function parseManifestRequest(body: unknown): ManifestRequest | string {
  if (!isManifest(body) || !("manifest" in body)) {
    return 'expected a JSON body {"manifest": {...}} with Content-Type application/json';
  }
  const unknown = Object.keys(body).filter((k) => k !== "manifest" && k !== "update");
  if (unknown.length > 0) return `unknown field(s): ${unknown.join(", ")}`;
  const manifest = body["manifest"];
  if (!isManifest(manifest)) return "the manifest must be a JSON object";
  const keys = ownerKeyDigests(manifest);
  if ("error" in keys) return `the manifest's ${keys.error}`;
  if (!("update" in body)) return { manifest };
  const update = body["update"];
  if (
    !isManifest(update) ||
    !isDigest(update["parent"]) ||
    typeof update["ownerKey"] !== "string" ||
    typeof update["signature"] !== "string" ||
    Object.keys(update).length !== 3
  ) {
    return 'update must be {"parent": "sha256:…", "ownerKey": "<PEM public key>", "signature": "<base64>"}';
  }
  return {
    manifest,
    update: { parent: update["parent"], ownerKey: update["ownerKey"], signature: update["signature"] },
  };
}

/** The decision for a request on a Coordinator that holds `current` (of bundle digest `digest`). */
export function decideUpdate(
  current: { state: CoordinatorState; digest: string },
  request: ManifestRequest,
): UpdateDecision {
  const listed = ownerKeyDigests(current.state.manifest);
  const owners = "digests" in listed ? listed.digests : [];
  const { update } = request;
  if (!update) {
    return {
      kind: "refuse",
      status: 409,
      error:
        owners.length === 0
          ? `the Coordinator is already initialized, and its manifest lists no ${OWNER_KEY_DIGESTS_FIELD}: it cannot be updated`
          : "the Coordinator is already initialized; to update its manifest, run `coordinator-ha set` with --workload-owner-key and a key the manifest lists",
    };
  }
  if (JSON.stringify(request.manifest) === JSON.stringify(current.state.manifest)) return { kind: "same" };
  if (owners.length === 0) {
    return {
      kind: "refuse",
      status: 403,
      error: `the current manifest lists no ${OWNER_KEY_DIGESTS_FIELD}: this Coordinator cannot be updated (set a manifest that lists owner keys when you initialize it)`,
    };
  }
  const proof = checkProof(update, request.manifest, owners);
  if (!proof.ok) return { kind: "refuse", status: proof.status, error: proof.error };
  if (update.parent !== current.digest) {
    return {
      kind: "refuse",
      status: 409,
      error: `the update replaces state ${update.parent}, but the Coordinator now holds ${current.digest} (another update came first); see it with \`coordinator-ha verify\` and run \`coordinator-ha set\` again`,
    };
  }
  return {
    kind: "update",
    state: updatedState(current.state, request.manifest),
    keyDigest: proof.keyDigest,
  };
}
