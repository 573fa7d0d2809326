// What the pod watch does to a gated pod's condition (the confirmation path is confirm.ts):
// - recovered, and an app container restarted since the confirmation: False, AppRestarted,
//   until the sidecar confirms again (it re-sends its confirmation while the app is ready);
// - no condition yet, or still waiting: False, AwaitingState, with a message that says
//   what the pod waits for, kept current as peers come and go;
// - anything else (AppRestarted, a confirmation being made): left to the sidecar.
// Every replica of the handler computes the same answer from the same pod, so writes
// converge without a leader.
import type { V1Pod } from "@kubernetes/client-node";
import { Reason } from "../names.ts";
import {
  formatMessage,
  recordOf,
  recoveredCondition,
  saysTheSame,
  type DesiredCondition,
} from "./condition.ts";
import { selectPeers } from "./peers.ts";
import { appRestartCounts, isGated, isTerminating, owningStatefulSet } from "./pod.ts";
import type { PodEvent } from "./pod-event.ts";

export const AWAITING_NO_PEER =
  'No initialized peer exists: initialize this Coordinator with "coordinator-ha set" (it will then be marked recovered)';
export const AWAITING_PEER = "Waiting for the recovery sidecar to fetch the state from a peer and confirm";
export const AWAITING_NOT_STATEFULSET =
  "Not controlled by a StatefulSet: coordinator-ha recovers only the pods of a StatefulSet";

export interface Reconciliation {
  desired: DesiredCondition;
  /** Recorded only by the replica whose write went through. */
  event?: PodEvent;
}

/** The write the watch wants for `pod` given the pods of its namespace, or undefined for none. */
export function reconcilePod(pod: V1Pod, pods: V1Pod[]): Reconciliation | undefined {
  if (!isGated(pod) || isTerminating(pod)) return undefined;
  const current = recoveredCondition(pod);

  if (current?.status === "True") {
    const record = recordOf(pod);
    if (!record) return undefined;
    const live = appRestartCounts(pod);
    const restarted = Object.keys(live)
      .filter((name) => (live[name] ?? 0) > (record.restarts[name] ?? 0))
      .sort();
    if (restarted.length === 0) return undefined;
    const text =
      `App container ${restarted.join(", ")} restarted after the state was confirmed; ` +
      "waiting for the recovery sidecar to confirm again";
    // The record stays: it still names the state that the pod's state volume holds.
    return {
      desired: { status: "False", reason: Reason.AppRestarted, message: formatMessage(text, record) },
      event: { type: "Warning", reason: Reason.AppRestarted, message: text },
    };
  }

  if (current && current.reason !== Reason.AwaitingState) return undefined;
  const statefulSet = owningStatefulSet(pod);
  const message = !statefulSet
    ? AWAITING_NOT_STATEFULSET
    : selectPeers(pod, statefulSet, pods).length > 0
      ? AWAITING_PEER
      : AWAITING_NO_PEER;
  const desired: DesiredCondition = { status: "False", reason: Reason.AwaitingState, message };
  return saysTheSame(current, desired) ? undefined : { desired };
}
