// The app's side of the sidecar's local commit API (http://127.0.0.1:7445/v1/commit, see
// commit-api.ts for the server and docs/recovery.md for the contract). The reference
// Coordinator uses it; any app in any language can speak the same JSON.
import type { Bundle } from "../state/bundle.ts";
import { requestJson } from "../http/client.ts";
import { isDigest } from "../state/bundle.ts";

/** POST /v1/commit body. */
export interface CommitRequest {
  /** The committed state this update replaces; null for a first state. */
  parent: string | null;
  files: { path: string; content: string /* base64 */ }[];
}

export type CommitAnswer =
  /** A quorum holds it, and it is the live state in the directory now. */
  | { kind: "committed"; digest: string }
  /** Refused: another state is the head (`head`); the live state is unchanged. */
  | { kind: "conflict"; error: string; head: string | null }
  /** Nothing committed: the sidecar, the handler or a quorum were not there in time. */
  | { kind: "unavailable"; error: string }
  /** The sidecar refused the request itself (400, 413). */
  | { kind: "invalid"; error: string };

/** Long enough for a proposal to reach its quorum or expire (60 s) at the handler. */
const COMMIT_TIMEOUT_MS = 90_000;

export function commitRequest(parent: string | null, bundle: Bundle): CommitRequest {
  return {
    parent,
    files: bundle.files.map((f) => ({ path: f.path, content: f.content.toString("base64") })),
  };
}

export async function commitUpdate(url: URL, parent: string | null, bundle: Bundle): Promise<CommitAnswer> {
  let res;
  try {
    res = await requestJson({
      url,
      method: "POST",
      body: commitRequest(parent, bundle),
      timeoutMs: COMMIT_TIMEOUT_MS,
      maxResponseBytes: 64 * 1024,
    });
  } catch (err) {
    return {
      kind: "unavailable",
      error: `cannot reach the sidecar's commit API at ${url.origin}: ${(err as Error).message}`,
    };
  }
  const body = (typeof res.body === "object" && res.body !== null ? res.body : {}) as Record<string, unknown>;
  const error = typeof body["error"] === "string" ? body["error"] : `HTTP ${res.status}`;
  if (res.status === 200 && isDigest(body["digest"])) return { kind: "committed", digest: body["digest"] };
  if (res.status === 409) {
    return { kind: "conflict", error, head: isDigest(body["head"]) ? body["head"] : null };
  }
  if (res.status === 400 || res.status === 413) return { kind: "invalid", error };
  return { kind: "unavailable", error };
}
