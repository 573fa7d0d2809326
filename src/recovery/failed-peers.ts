// The peers that failed to deliver the state before one did, as the sidecar reports them to
// the handler (RecoveredRequest.failedPeers), which shows them as a Warning Event on the pod.
// A reason is the transfer's error message only (never the token, a key or state bytes), and
// it is made fit for an Event: control characters out, bounded. The list keeps the first
// failures: a StatefulSet with more than 8 peers that all fail has a problem that 8 name well.
import { MAX_FAILED_PEER_REASON, MAX_FAILED_PEERS, type FailedPeer } from "../handler/api.ts";

const CONTROL = /\p{Cc}+/gu;

/** Adds `pod`'s failure to `failed`, unless it holds MAX_FAILED_PEERS already. */
export function recordFailure(failed: FailedPeer[], pod: string, err: unknown): void {
  if (failed.length < MAX_FAILED_PEERS) failed.push({ pod, reason: reasonOf(err) });
}

function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const text = message.replace(CONTROL, " ").trim() || "failed without a message";
  if (text.length <= MAX_FAILED_PEER_REASON) return text;
  // Not in the middle of a surrogate pair: the rest would be no character.
  const cut = text.slice(0, MAX_FAILED_PEER_REASON - 1).replace(/[\uD800-\uDBFF]$/, "");
  return `${cut}…`;
}
