// Who may a recovering pod fetch the state from? The Ready, recovered pods of its own
// StatefulSet. Ready alone is not enough (the app may be ready without a gate on another
// pod); recovered alone is not enough (the pod may be down). Both together mean "holds the
// confirmed state and serves now".
import type { V1Pod } from "@kubernetes/client-node";
import type { Peer } from "./api.ts";
import { recordOf, recoveredCondition } from "./condition.ts";
import { isReady, isTerminating, owningStatefulSet, peerPort, type StatefulSetRef } from "./pod.ts";

/** The peers of `caller` among `pods` (any pods; others are filtered out), sorted by name. */
export function selectPeers(caller: V1Pod, statefulSet: StatefulSetRef, pods: V1Pod[]): Peer[] {
  const peers: Peer[] = [];
  for (const pod of pods) {
    const meta = pod.metadata;
    if (meta?.namespace !== caller.metadata?.namespace) continue;
    if (meta?.name === caller.metadata?.name || meta?.uid === caller.metadata?.uid) continue;
    if (owningStatefulSet(pod)?.uid !== statefulSet.uid || isTerminating(pod) || !isReady(pod)) continue;
    if (recoveredCondition(pod)?.status !== "True") continue;
    const record = recordOf(pod);
    const ip = pod.status?.podIP;
    const port = peerPort(pod);
    if (!record || !ip || port === undefined || !meta?.name || !meta.uid) continue;
    peers.push({
      pod: meta.name,
      uid: meta.uid,
      ip,
      port,
      digest: record.digest,
      certSha256: record.certSha256,
    });
  }
  return peers.sort((a, b) => a.pod.localeCompare(b.pod));
}
