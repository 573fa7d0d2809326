// The peer API's first, local look at a caller whose token it has verified: same namespace,
// same service account, a pod name `<statefulset>-<ordinal>` of this pod's StatefulSet, and
// not this pod. It only turns obvious strangers away without asking anyone. It proves no
// membership: any pod can take a member's name, and a token outlives its pod. Who may
// receive the state is decided by the handler from the live pods (peer-access.ts there),
// which the peer API asks next.
import type { PodIdentity } from "../identity/index.ts";

export type PeerDecision = { ok: true } | { ok: false; reason: string };

const STATEFULSET_POD = /^(.+)-(0|[1-9][0-9]*)$/;

/** The StatefulSet a pod belongs to by its name (`<statefulset>-<ordinal>`), if any. */
export function statefulSetOf(podName: string): string | undefined {
  return STATEFULSET_POD.exec(podName)?.[1];
}

export function authorizePeer(self: PodIdentity, caller: PodIdentity): PeerDecision {
  const who = `pod ${caller.namespace}/${caller.podName}`;
  if (caller.namespace !== self.namespace) {
    return { ok: false, reason: `${who} is not in namespace ${self.namespace}` };
  }
  if (caller.serviceAccount !== self.serviceAccount) {
    return { ok: false, reason: `${who} does not run as service account ${self.serviceAccount}` };
  }
  const statefulSet = statefulSetOf(self.podName);
  if (statefulSet === undefined || statefulSetOf(caller.podName) !== statefulSet) {
    return { ok: false, reason: `${who} is not a pod of StatefulSet ${statefulSet ?? "(none)"}` };
  }
  if (caller.podName === self.podName || caller.podUid === self.podUid) {
    return { ok: false, reason: `${who} is this pod; a pod does not recover from itself` };
  }
  return { ok: true };
}
