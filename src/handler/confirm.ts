// What a sidecar's confirmation (POST /v1/recovered) does to its pod's condition. The
// caller has been checked (caller.ts) and the body validated (request.ts); this decides
// whether the claim fits what the StatefulSet's other pods recorded, and what to write.
//
// How strict we are about `source`:
// - the named peer must be a pod of the caller's own StatefulSet (by name and, while it
//   exists, by owner uid), and while it exists it must have recorded the very digest that
//   the caller now confirms;
// - a peer that has gone since (deleted during a rollout before the confirmation arrived)
//   cannot vouch any more; the confirmation is then accepted on the strength of the rule
//   below, because refusing it would strand the only pod that still holds the state;
// - whatever the source, no other pod of the StatefulSet may have recorded a different
//   digest: two different states in one StatefulSet are a split brain, and the second one
//   never counts as recovered. This is also what stops a second `set` (source null) on
//   another instance while an initialized one exists.
import type { V1Pod } from "@kubernetes/client-node";
import { Reason } from "../names.ts";
import type { RecoveredRequest } from "./api.ts";
import {
  formatMessage,
  recordOf,
  recoveredCondition,
  saysTheSame,
  type DesiredCondition,
} from "./condition.ts";
import { appRestartCounts, owningStatefulSet, type StatefulSetRef } from "./pod.ts";
import type { PodEvent } from "./pod-event.ts";
import { refuse, type Refusal } from "./reasons.ts";

export type ConfirmDecision =
  | { kind: "refuse"; refusal: Refusal }
  | { kind: "write"; desired: DesiredCondition; event: PodEvent }
  | { kind: "unchanged"; desired: DesiredCondition };

/**
 * `pod` is the caller's pod as the apiserver has it now; `pods` are the pods of its
 * namespace from the cache (others are ignored).
 */
export function decideConfirmation(
  pod: V1Pod,
  statefulSet: StatefulSetRef,
  request: RecoveredRequest,
  pods: V1Pod[],
): ConfirmDecision {
  const name = pod.metadata?.name ?? "";
  const no = (refusal: Refusal): ConfirmDecision => ({ kind: "refuse", refusal });
  const siblings = pods.filter(
    (p) =>
      p.metadata?.namespace === pod.metadata?.namespace &&
      p.metadata?.uid !== pod.metadata?.uid &&
      p.metadata?.name !== name,
  );

  if (request.source !== null) {
    if (request.source === name) {
      return no(
        refuse("bad_request", "source names the confirming pod itself; a pod cannot recover from itself"),
      );
    }
    if (!isMemberName(request.source, statefulSet.name)) {
      return no(
        refuse("not_a_peer", `source ${request.source} is not a pod of StatefulSet ${statefulSet.name}`),
      );
    }
    const source = siblings.find((p) => p.metadata?.name === request.source);
    if (source) {
      if (owningStatefulSet(source)?.uid !== statefulSet.uid) {
        return no(
          refuse("not_a_peer", `source ${request.source} is not a pod of StatefulSet ${statefulSet.name}`),
        );
      }
      const vouched = recordOf(source);
      if (!vouched) {
        return no(refuse("source_not_recovered", `source ${request.source} has never been marked recovered`));
      }
      if (vouched.digest !== request.digest) {
        return no(
          refuse(
            "source_digest_mismatch",
            `source ${request.source} recorded state ${vouched.digest}, not ${request.digest}`,
          ),
        );
      }
    }
  }

  for (const sibling of siblings) {
    if (owningStatefulSet(sibling)?.uid !== statefulSet.uid) continue;
    const other = recordOf(sibling);
    if (other && other.digest !== request.digest) {
      return no(
        refuse(
          "conflicting_state",
          `pod ${sibling.metadata?.name} of StatefulSet ${statefulSet.name} holds state ${other.digest}; ` +
            `refusing a second, different state ${request.digest} (split brain)`,
        ),
      );
    }
  }

  const record = { digest: request.digest, certSha256: request.certSha256, restarts: appRestartCounts(pod) };
  const desired: DesiredCondition =
    request.source === null
      ? {
          status: "True",
          reason: Reason.Initialized,
          message: formatMessage("Initialized by its user", record),
        }
      : {
          status: "True",
          reason: Reason.RecoveredFromPeer,
          message: formatMessage(`Recovered the state from peer ${request.source}`, record),
        };
  if (saysTheSame(recoveredCondition(pod), desired)) return { kind: "unchanged", desired };

  // The Event carries the condition's reason, so that `kubectl describe pod` (which prints
  // Events but not condition reasons) shows it.
  const event: PodEvent =
    request.source === null
      ? {
          type: "Normal",
          reason: Reason.Initialized,
          message: `Initialized with state ${request.digest} by its user`,
        }
      : {
          type: "Normal",
          reason: Reason.RecoveredFromPeer,
          message: `Recovered state ${request.digest} from peer ${request.source}`,
        };
  return { kind: "write", desired, event };
}

/** StatefulSet pods are named <statefulset>-<ordinal>. */
function isMemberName(pod: string, statefulSet: string): boolean {
  return pod.startsWith(`${statefulSet}-`) && /^\d+$/.test(pod.slice(statefulSet.length + 1));
}
