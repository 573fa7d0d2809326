// What a sidecar's confirmation (POST /v1/recovered) means, given the StatefulSet's head as
// read live just before the compare-and-swap (store.ts): whether it is accepted, the head to
// write (the member record), and the condition and Events that follow once that write went
// through. The caller has been checked (caller.ts) and the body validated (request.ts).
//
// The head decides the state (rules.ts, C1-C6): only the committed head is confirmed, or, with
// no head yet, a first state that then becomes it. So of two different first states confirmed
// at once through two handler replicas, the second one's write fails its resourceVersion
// precondition, and deciding again on the winner's head refuses it (conflicting_state).
//
// `source` is checked against the head's member records: the named peer must be a pod of the
// caller's own StatefulSet, and while it exists it must have recorded the very digest that the
// caller now confirms. A peer that has gone since (deleted during a rollout before the
// confirmation arrived) cannot vouch any more; the head's rules alone decide then.
import type { V1Pod } from "@kubernetes/client-node";
import { EventReason, Reason } from "../names.ts";
import type { RecoveredRequest } from "./api.ts";
import { recoveredCondition, saysTheSame, type DesiredCondition } from "./condition.ts";
import { decideConfirm, memberOf, type HeadConfirmDecision, type HeadContext } from "./head/rules.ts";
import { short, type HeadSpec } from "./head/state-head.ts";
import { appRestartCounts, isTerminating, owningStatefulSet, type StatefulSetRef } from "./pod.ts";
import type { PodEvent } from "./pod-event.ts";
import { refuse, type Refusal } from "./reasons.ts";

export type ConfirmDecision =
  | { kind: "refuse"; refusal: Refusal; head?: HeadConfirmDecision }
  | {
      kind: "accept";
      /** The head to write first; undefined when the record is already there. */
      next?: HeadSpec;
      head: HeadConfirmDecision & { kind: "recorded" };
      desired: DesiredCondition;
      /** To record once the condition is written; empty when it already says the same. */
      events: PodEvent[];
      /** How many failed peers the Warning among `events` names (0: no Warning). */
      failedPeers: number;
    };

/** `pod` is the caller's pod as the apiserver has it now; `ctx.pods` its StatefulSet's pods. */
export function decideConfirmation(
  pod: V1Pod,
  statefulSet: StatefulSetRef,
  request: RecoveredRequest,
  head: HeadSpec,
  ctx: HeadContext,
): ConfirmDecision {
  const name = pod.metadata?.name ?? "";
  const uid = pod.metadata?.uid ?? "";
  const no = (refusal: Refusal): ConfirmDecision => ({ kind: "refuse", refusal });

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
    const source = ctx.pods[request.source];
    if (source && !source.terminating) {
      const vouched = memberOf(head, request.source, source.uid);
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

  const decision = decideConfirm(
    head,
    {
      pod: name,
      uid,
      digest: request.digest,
      source: request.source,
      certSha256: request.certSha256,
      restarts: appRestartCounts(pod),
    },
    ctx,
  );
  if (decision.kind === "refused") {
    return { kind: "refuse", refusal: refuse(decision.reason, decision.message), head: decision };
  }

  // A pod whose gate says it was behind (or that was just marked Updated) is catching up,
  // even when its new record is already in the head: a confirmation whose gate write lost a
  // race to another writer is decided again, and then finds its own record.
  const reason = recoveredCondition(pod)?.reason;
  const catchingUp =
    reason === Reason.StateStale || reason === Reason.StateConflict || reason === Reason.Updated;
  const as = decision.as === Reason.RecoveredFromPeer && catchingUp ? Reason.Updated : decision.as;
  const before =
    decision.previous && decision.previous.digest !== request.digest ? decision.previous.digest : undefined;
  const digest = short(request.digest);
  const [text, eventText] =
    as === Reason.Initialized
      ? [
          `Initialized by its user with state ${digest}`,
          `Initialized with state ${request.digest} by its user`,
        ]
      : as === Reason.RecoveredFromPeer
        ? [
            `Recovered state ${digest} from peer ${request.source}`,
            `Recovered state ${request.digest} from peer ${request.source}`,
          ]
        : [
            `Updated to state ${digest}` + (request.source ? ` from peer ${request.source}` : ""),
            (before
              ? `Updated from state ${before} to ${request.digest}`
              : `Updated to state ${request.digest}`) +
              (request.source ? ` from peer ${request.source}` : ""),
          ];
  const desired: DesiredCondition = { status: "True", reason: as, message: text };
  // The Event carries the condition's reason, so that `kubectl describe pod` (which prints
  // Events but not condition reasons) shows it. The Warning goes with it, so that a repeated
  // confirmation repeats neither.
  const changes = !saysTheSame(recoveredCondition(pod), desired);
  const warning = changes ? transferWarning(request) : undefined;
  return {
    kind: "accept",
    head: decision,
    desired,
    ...(decision.next ? { next: decision.next } : {}),
    events: changes
      ? [{ type: "Normal", reason: as, message: eventText }, ...(warning ? [warning] : [])]
      : [],
    failedPeers: warning ? (request.failedPeers?.length ?? 0) : 0,
  };
}

/**
 * The Warning that names the peers which failed to deliver the state before `source` did, as
 * the sidecar reports them (the handler cannot check that claim), or undefined for none.
 */
function transferWarning(request: RecoveredRequest): PodEvent | undefined {
  const failed = request.failedPeers ?? [];
  if (failed.length === 0 || request.source === null) return undefined;
  const message = [
    ...failed.map(
      (p, i) =>
        `${i === 0 ? "Peer" : "peer"} ${p.pod} failed to deliver state ${request.digest}: ${p.reason}`,
    ),
    `recovered from peer ${request.source}`,
  ].join("; ");
  return { type: "Warning", reason: EventReason.PeerTransferFailed, message };
}

/** The StatefulSet's pods by name, as the head's rules see them (`caller` from a live read). */
export function podsNow(statefulSet: StatefulSetRef, pods: V1Pod[], caller?: V1Pod): HeadContext["pods"] {
  const now: HeadContext["pods"] = {};
  for (const p of caller
    ? [...pods.filter((q) => q.metadata?.name !== caller.metadata?.name), caller]
    : pods) {
    if (owningStatefulSet(p)?.uid !== statefulSet.uid || !p.metadata?.name) continue;
    now[p.metadata.name] = { uid: p.metadata.uid ?? "", terminating: isTerminating(p) };
  }
  return now;
}

/** StatefulSet pods are named <statefulset>-<ordinal>. */
function isMemberName(pod: string, statefulSet: string): boolean {
  return pod.startsWith(`${statefulSet}-`) && /^\d+$/.test(pod.slice(statefulSet.length + 1));
}
