// What the watch does to a gated pod's condition (the confirmation path is confirm.ts), given
// the pod, the pods of its namespace and its StatefulSet's head (from the StateHead watch).
// The rules, in order (the first that applies wins):
//
//   G0 not gated, or terminating                                   -> nothing
//   G1 True, no member record in the head                          -> nothing (being written)
//   G2 True, an app container restarted since the confirmation     -> False AppRestarted
//   G3 True, behind the head, but it held the head when it was
//      committed and the swap grace has not run out                -> nothing yet (re-check)
//   G4 True, its state is an ancestor of the head                  -> False StateStale
//   G5 True, its state is not in the history (a second state)      -> False StateConflict
//   G6 StateStale/StateConflict, and its record is the head now    -> True Updated
//   G7 StateStale/StateConflict otherwise                          -> kept current (the head moves)
//   G8 no condition yet, or AwaitingState                          -> AwaitingState, the message
//                                                                     says what it waits for
//   G9 anything else (AppRestarted: the sidecar confirms again)    -> nothing
//
// Every replica of the handler computes the same answer from the same pod and head, so writes
// converge without a leader. A write that turns a gate False is re-decided on a live read of
// the head first (controller.ts): a cache that lags behind must not demote a pod that has
// just caught up.
import type { V1Pod } from "@kubernetes/client-node";
import { Reason } from "../names.ts";
import { recoveredCondition, saysTheSame, type DesiredCondition } from "./condition.ts";
import { isAncestor, memberOf, podHolding } from "./head/rules.ts";
import { short, type HeadSpec } from "./head/state-head.ts";
import { hasPeer } from "./peers.ts";
import { appRestartCounts, isGated, isTerminating, owningStatefulSet } from "./pod.ts";
import type { PodEvent } from "./pod-event.ts";

export const AWAITING_NO_PEER =
  'No initialized peer exists: initialize this Coordinator with "coordinator-ha set" (it will then be marked recovered)';
export const AWAITING_PEER = "Waiting for the recovery sidecar to fetch the state from a peer and confirm";
export const AWAITING_NOT_STATEFULSET =
  "Not controlled by a StatefulSet: coordinator-ha recovers only the pods of a StatefulSet";

/** How long a pod that held the head when it was committed may take to swap it in. */
export const SWAP_GRACE_MS = 30_000;

export type GateRule = "G2" | "G3" | "G4" | "G5" | "G6" | "G7" | "G8";

export interface Reconciliation {
  rule: GateRule;
  /** Undefined for G3: nothing to write now, look again after `recheckAfterMs`. */
  desired?: DesiredCondition;
  /** Recorded only by the replica whose write went through. */
  event?: PodEvent;
  recheckAfterMs?: number;
}

/** The write the watch wants for `pod`, or undefined for none. */
export function reconcilePod(
  pod: V1Pod,
  pods: V1Pod[],
  head: HeadSpec | undefined,
  now: Date,
): Reconciliation | undefined {
  if (!isGated(pod) || isTerminating(pod)) return undefined;
  const current = recoveredCondition(pod);
  const statefulSet = owningStatefulSet(pod);
  const ownHead = head && statefulSet && head.statefulSet.uid === statefulSet.uid ? head : undefined;
  const name = pod.metadata?.name ?? "";
  const member = memberOf(ownHead, name, pod.metadata?.uid);
  const committed = ownHead?.committed ?? null;

  if (current?.status === "True") {
    if (!member || !ownHead) return undefined;
    const restarted = restartedSince(pod, member.restarts);
    if (restarted.length > 0) {
      const text =
        `App container ${restarted.join(", ")} restarted after the state was confirmed; ` +
        "waiting for the recovery sidecar to confirm again";
      return {
        rule: "G2",
        desired: { status: "False", reason: Reason.AppRestarted, message: text },
        event: { type: "Warning", reason: Reason.AppRestarted, message: text },
      };
    }
    if (!committed || member.digest === committed.digest) return undefined;
    const swapEnds = Date.parse(committed.at) + SWAP_GRACE_MS;
    if (committed.holders[name] === pod.metadata?.uid && now.getTime() < swapEnds) {
      return { rule: "G3", recheckAfterMs: swapEnds - now.getTime() };
    }
    return behind(ownHead, member.digest);
  }

  if (current?.reason === Reason.StateStale || current?.reason === Reason.StateConflict) {
    if (!ownHead || !member || !committed) return undefined;
    if (member.digest === committed.digest) {
      // Its app restarted since: the sidecar confirms again, which opens the gate.
      if (restartedSince(pod, member.restarts).length > 0) return undefined;
      const desired: DesiredCondition = {
        status: "True",
        reason: Reason.Updated,
        message: `Updated to state ${short(committed.digest)}`,
      };
      return {
        rule: "G6",
        desired,
        event: { type: "Normal", reason: Reason.Updated, message: desired.message },
      };
    }
    const change = behind(ownHead, member.digest);
    return saysTheSame(current, change.desired!) ? undefined : { rule: "G7", desired: change.desired! };
  }

  if (current && current.reason !== Reason.AwaitingState) return undefined;
  const message = !statefulSet
    ? AWAITING_NOT_STATEFULSET
    : hasPeer(pod, statefulSet, pods, ownHead)
      ? AWAITING_PEER
      : AWAITING_NO_PEER;
  const desired: DesiredCondition = { status: "False", reason: Reason.AwaitingState, message };
  return saysTheSame(current, desired) ? undefined : { rule: "G8", desired };
}

/** G4/G5: the condition of a pod whose recorded state is not the committed head. */
function behind(head: HeadSpec, digest: string): Reconciliation {
  const committed = head.committed!;
  const holder = podHolding(head, committed.digest) ?? committed.by;
  if (isAncestor(head, digest)) {
    const message =
      `Holds state ${short(digest)}, the head is ${short(committed.digest)}, held by pod ${holder}; ` +
      "the recovery sidecar fetches the head";
    return {
      rule: "G4",
      desired: { status: "False", reason: Reason.StateStale, message },
      event: {
        type: "Warning",
        reason: Reason.StateStale,
        message: `Holds state ${digest}, behind the head ${committed.digest} (held by pod ${holder})`,
      },
    };
  }
  const message =
    `Holds state ${short(digest)}, which is not in the StatefulSet's history (the head is ` +
    `${short(committed.digest)}, held by pod ${holder}): a second state never counts as recovered`;
  return {
    rule: "G5",
    desired: { status: "False", reason: Reason.StateConflict, message },
    event: {
      type: "Warning",
      reason: Reason.StateConflict,
      message: `Holds state ${digest}, which conflicts with the head ${committed.digest} (held by pod ${holder})`,
    },
  };
}

function restartedSince(pod: V1Pod, recorded: Record<string, number>): string[] {
  const live = appRestartCounts(pod);
  return Object.keys(live)
    .filter((name) => (live[name] ?? 0) > (recorded[name] ?? 0))
    .sort();
}
