// Who may a recovering pod fetch the state from? The Ready, recovered pods of its own
// StatefulSet whose recorded state is the committed head. Ready alone is not enough (the app
// may be ready without a gate on another pod); recovered alone is not enough (the pod may be
// down); and a pod behind the head would hand out an old state.
import type { V1Pod } from "@kubernetes/client-node";
import type { Peer } from "./api.ts";
import { recoveredCondition } from "./condition.ts";
import { memberOf } from "./head/rules.ts";
import type { HeadSpec } from "./head/state-head.ts";
import { isReady, isTerminating, owningStatefulSet, peerPort, type StatefulSetRef } from "./pod.ts";

/**
 * The peers of `caller` among `pods` (any pods; others are filtered out), sorted by name.
 * `head` is the StatefulSet's StateHead (undefined: none yet, so nobody recorded a state).
 */
export function selectPeers(
  caller: V1Pod,
  statefulSet: StatefulSetRef,
  pods: V1Pod[],
  head: HeadSpec | undefined,
): Peer[] {
  const peers: Peer[] = [];
  if (!head || head.statefulSet.uid !== statefulSet.uid) return peers;
  for (const pod of pods) {
    const meta = pod.metadata;
    if (meta?.namespace !== caller.metadata?.namespace) continue;
    if (meta?.name === caller.metadata?.name || meta?.uid === caller.metadata?.uid) continue;
    if (owningStatefulSet(pod)?.uid !== statefulSet.uid || isTerminating(pod) || !isReady(pod)) continue;
    if (recoveredCondition(pod)?.status !== "True") continue;
    const record = memberOf(head, meta?.name ?? "", meta?.uid);
    if (!record || (head.committed && record.digest !== head.committed.digest)) continue;
    const ip = pod.status?.podIP;
    const port = peerPort(pod);
    if (!ip || port === undefined || !meta?.name || !meta.uid) continue;
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
