// The strategic-merge patch on pods/status that sets the recovered condition.
//
// - Strategic merge: status.conditions merge by `type`, so the kubelet's own conditions
//   (Ready, ContainersReady, …) stay as they are. A JSON merge patch would replace the list.
// - metadata.uid is a precondition: the apiserver answers 409 if the pod was replaced by
//   a namesake since we looked at it, so a confirmation never lands on the wrong pod.
// - metadata.resourceVersion is a precondition too: a decision made on an older version of
//   the pod (a lagging cache, a concurrent replica) fails with 409 instead of overwriting a
//   newer condition; the caller re-reads and decides again.
import type { V1Pod } from "@kubernetes/client-node";
import { RECOVERED_CONDITION } from "../names.ts";
import { recoveredCondition, type DesiredCondition } from "./condition.ts";

export function conditionPatch(pod: V1Pod, desired: DesiredCondition, now: Date): object {
  const current = recoveredCondition(pod);
  // The transition time moves only when the status does (a new message is no transition).
  const lastTransitionTime =
    current?.status === desired.status && current.lastTransitionTime
      ? rfc3339(current.lastTransitionTime)
      : rfc3339(now);
  return {
    metadata: { uid: pod.metadata?.uid, resourceVersion: pod.metadata?.resourceVersion },
    status: {
      conditions: [
        {
          type: RECOVERED_CONDITION,
          status: desired.status,
          reason: desired.reason,
          message: desired.message,
          lastTransitionTime,
        },
      ],
    },
  };
}

/** Kubernetes times have whole seconds; the client hands them over as Date or as string. */
function rfc3339(time: Date | string): string {
  const date = typeof time === "string" ? new Date(time) : time;
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}
