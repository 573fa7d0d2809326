// Who may fetch this pod's state through the peer API? Only another pod of the same
// StatefulSet: same namespace, same service account, a pod name `<statefulset>-<ordinal>`
// with this pod's StatefulSet name, and not this pod. The token proves the caller's pod
// name and uid (pod-bound token); the name proves its StatefulSet, because only the
// StatefulSet controller creates pods named after it in practice, and the service account
// (checked too) is the boundary the namespace's admins draw around the Coordinator.
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
