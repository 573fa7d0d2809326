// May a pod receive the state from a peer? Asked by the serving peer's sidecar before it
// hands out anything (POST /v1/peer-access), and answered from the apiserver's pods as they
// are now. The peer API cannot answer it alone: the token proves a pod's name and uid at the
// time it was issued, not that the pod still exists, nor which StatefulSet controls it (any
// pod can be named `coordinator-5`). Only the handler may read pods (DESIGN.md), so it decides.
//
// The rule: the state goes only to a live member of the serving pod's StatefulSet, that is a
// pod that exists now with the token's uid, in the same namespace, running as the token's
// (and the serving pod's) service account, controlled by the StatefulSet with the serving
// pod's controller uid, selected, carrying the readiness gate, not terminating, and not the
// serving pod itself.
import type { V1Pod } from "@kubernetes/client-node";
import type { PodIdentity } from "../identity/index.ts";
import type { LabelSelector } from "../kube/label-selector.ts";
import { RECOVERED_CONDITION } from "../names.ts";
import type { PeerAccessRefusal } from "./api.ts";
import { isGated, isTerminating, owningStatefulSet, serviceAccountOf, type StatefulSetRef } from "./pod.ts";

export type PeerAccessDecision =
  { allowed: true } | { allowed: false; reason: PeerAccessRefusal; message: string };

export interface ServingPod {
  /** The serving pod as the apiserver has it now (already checked as a caller). */
  pod: V1Pod;
  statefulSet: StatefulSetRef;
}

/**
 * `candidate` is the pod that wants the state, as its verified token names it; `live` is the
 * pod of that name as the apiserver has it now (undefined: none).
 */
export function decidePeerAccess(
  serving: ServingPod,
  candidate: PodIdentity,
  live: V1Pod | undefined,
  selector: LabelSelector,
): PeerAccessDecision {
  const who = `pod ${candidate.namespace}/${candidate.podName}`;
  const no = (reason: PeerAccessRefusal, message: string): PeerAccessDecision => ({
    allowed: false,
    reason,
    message,
  });
  const servingMeta = serving.pod.metadata;
  if (candidate.namespace !== servingMeta?.namespace) {
    return no("other_namespace", `${who} is not in namespace ${servingMeta?.namespace ?? ""}`);
  }
  if (candidate.podUid === servingMeta.uid || candidate.podName === servingMeta.name) {
    return no("self", `${who} is the serving pod; a pod does not recover from itself`);
  }
  // A token outlives its pod until it expires; a deleted or replaced pod gets nothing.
  if (!live) return no("pod_gone", `${who} does not exist (any more); its token is void`);
  if (live.metadata?.uid !== candidate.podUid) {
    return no("uid_mismatch", `${who} has been replaced; the token belongs to an earlier pod of that name`);
  }
  const servingAccount = serviceAccountOf(serving.pod);
  if (serviceAccountOf(live) !== candidate.serviceAccount || candidate.serviceAccount !== servingAccount) {
    return no("service_account_mismatch", `${who} does not run as service account ${servingAccount}`);
  }
  const owner = owningStatefulSet(live);
  if (owner?.uid !== serving.statefulSet.uid) {
    return no(
      "not_member",
      `${who} is not controlled by StatefulSet ${serving.statefulSet.name} (uid ${serving.statefulSet.uid})`,
    );
  }
  if (!selector.matches(live.metadata?.labels)) {
    return no("not_selected", `${who} does not match the handler's pod selector ${selector.text}`);
  }
  if (!isGated(live)) return no("not_gated", `${who} has no readiness gate ${RECOVERED_CONDITION}`);
  if (isTerminating(live)) return no("terminating", `${who} is terminating`);
  return { allowed: true };
}
