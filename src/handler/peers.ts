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
  for (const pod of pods) {
    const peer = peerOf(caller, statefulSet, pod, head);
    if (peer) peers.push(peer);
  }
  return peers.sort((a, b) => a.pod.localeCompare(b.pod));
}

/**
 * Whether `caller` has any peer among `pods`: selectPeers(...).length > 0, but it stops at the
 * first one. The watch asks it for every waiting pod of a StatefulSet whenever one of them
 * changes; building the whole list each time made that quadratic in the StatefulSet's size
 * (bench:handler, 1,000 pods).
 */
export function hasPeer(
  caller: V1Pod,
  statefulSet: StatefulSetRef,
  pods: V1Pod[],
  head: HeadSpec | undefined,
): boolean {
  return pods.some((pod) => peerOf(caller, statefulSet, pod, head) !== undefined);
}

/** `pod` as a peer of `caller`, or undefined when it is not one. */
function peerOf(
  caller: V1Pod,
  statefulSet: StatefulSetRef,
  pod: V1Pod,
  head: HeadSpec | undefined,
): Peer | undefined {
  if (!head || head.statefulSet.uid !== statefulSet.uid) return undefined;
  const meta = pod.metadata;
  if (meta?.namespace !== caller.metadata?.namespace) return undefined;
  if (meta?.name === caller.metadata?.name || meta?.uid === caller.metadata?.uid) return undefined;
  if (owningStatefulSet(pod)?.uid !== statefulSet.uid || isTerminating(pod) || !isReady(pod))
    return undefined;
  if (recoveredCondition(pod)?.status !== "True") return undefined;
  const record = memberOf(head, meta?.name ?? "", meta?.uid);
  if (!record || (head.committed && record.digest !== head.committed.digest)) return undefined;
  const ip = pod.status?.podIP;
  const port = peerPort(pod);
  if (!ip || port === undefined || !meta?.name || !meta.uid) return undefined;
  return { pod: meta.name, uid: meta.uid, ip, port, digest: record.digest, certSha256: record.certSha256 };
}
