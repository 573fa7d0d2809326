// decideConfirmation: the checks of `source` against the head's member records, and what a
// confirmation the head accepts writes (the head's own rules are head-rules.test.ts's).
import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import type { RecoveredRequest } from "../../../src/handler/api.ts";
import { decideConfirmation, podsNow } from "../../../src/handler/confirm.ts";
import { emptyHead, type HeadSpec } from "../../../src/handler/head/state-head.ts";
import { owningStatefulSet } from "../../../src/handler/pod.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  OTHER_DIGEST,
  restarted,
  setCondition,
  STATEFULSET_UID,
  terminating,
  withoutCondition,
} from "./pods.ts";

const first: RecoveredRequest = { digest: DIGEST, source: null, certSha256: CERT };
const fromPeer: RecoveredRequest = { digest: DIGEST, source: "coordinator-0", certSha256: CERT };
const NOW = new Date("2026-11-23T22:00:00Z");
const EMPTY = emptyHead({ name: "coordinator", uid: STATEFULSET_UID });

function decide(caller: V1Pod, request: RecoveredRequest, others: V1Pod[], head: HeadSpec) {
  const statefulSet = owningStatefulSet(caller)!;
  return decideConfirmation(caller, statefulSet, request, head, {
    now: NOW,
    pods: podsNow(statefulSet, others, caller),
    quorum: 2,
    proposalTtlMs: 60_000,
  });
}

function outcome(decision: ReturnType<typeof decide>): string {
  return decision.kind === "refuse" ? decision.refusal.reason : decision.kind;
}

describe("decideConfirmation", () => {
  it("marks the first instance Initialized, and makes its state the head", () => {
    const caller = restarted(withoutCondition(coordinatorPod(0)), 2);
    const decision = decide(caller, first, [], EMPTY);
    expect(decision).toMatchObject({
      kind: "accept",
      desired: {
        status: "True",
        reason: "Initialized",
        message: "Initialized by its user with state sha256:5f0c2b0d6f9d…",
      },
      events: [
        {
          type: "Normal",
          reason: "Initialized",
          message: `Initialized with state ${DIGEST} by its user`,
        },
      ],
      failedPeers: 0,
    });
    if (decision.kind !== "accept") throw new Error("accepted");
    expect(decision.next?.committed).toMatchObject({ digest: DIGEST, parent: null, by: "coordinator-0" });
    expect(decision.next?.members["coordinator-0"]).toMatchObject({
      digest: DIGEST,
      certSha256: CERT,
      source: null,
      restarts: { coordinator: 2 },
    });
  });

  it("marks a pod RecoveredFromPeer and names the peer and the digest in the Event", () => {
    const head = headWith([memberOf(coordinatorPod(0))]);
    const decision = decide(withoutCondition(coordinatorPod(1)), fromPeer, [coordinatorPod(0)], head);
    expect(decision).toMatchObject({
      kind: "accept",
      desired: { status: "True", reason: "RecoveredFromPeer" },
      events: [
        {
          type: "Normal",
          reason: "RecoveredFromPeer",
          message: `Recovered state ${DIGEST} from peer coordinator-0`,
        },
      ],
      failedPeers: 0,
    });
  });

  it("writes nothing on a repeated confirmation (the sidecar repeats it)", () => {
    const head = headWith([
      memberOf(coordinatorPod(0)),
      memberOf(coordinatorPod(1), { source: "coordinator-0" }),
    ]);
    const once = decide(withoutCondition(coordinatorPod(1)), fromPeer, [coordinatorPod(0)], head);
    if (once.kind !== "accept") throw new Error("accepted");
    const confirmed = setCondition(coordinatorPod(1), "True", once.desired.reason, once.desired.message);
    const again = decide(confirmed, fromPeer, [coordinatorPod(0)], head);
    expect(again).toMatchObject({ kind: "accept", events: [] });
    expect(again.kind === "accept" && again.next).toBeFalsy();
  });

  it("re-confirms a pod whose app restarted, recording the new restart count", () => {
    const head = headWith([
      memberOf(coordinatorPod(0)),
      memberOf(coordinatorPod(1), { source: "coordinator-0" }),
    ]);
    const caller = setCondition(restarted(coordinatorPod(1), 1), "False", "AppRestarted", "restarted");
    const decision = decide(caller, fromPeer, [coordinatorPod(0)], head);
    if (decision.kind !== "accept") throw new Error("accepted");
    expect(decision.events).toMatchObject([{ type: "Normal", reason: "RecoveredFromPeer" }]);
    expect(decision.next?.members["coordinator-1"]?.restarts).toEqual({ coordinator: 1 });
  });

  it.each([
    ["accepts a source that has gone since (deleted during a rollout)", fromPeer, [], "accept"],
    ["accepts a terminating source", fromPeer, [terminating(coordinatorPod(0))], "accept"],
    ["refuses the pod itself as its source", { ...fromPeer, source: "coordinator-1" }, [], "bad_request"],
    [
      "refuses a source whose name is not of the StatefulSet",
      { ...fromPeer, source: "vault-0" },
      [],
      "not_a_peer",
    ],
    [
      "refuses a source that never recorded a state",
      { ...fromPeer, source: "coordinator-2" },
      [coordinatorPod(2)],
      "source_not_recovered",
    ],
    [
      "refuses a digest that the source never recorded",
      { ...fromPeer, digest: OTHER_DIGEST },
      [coordinatorPod(0)],
      "source_digest_mismatch",
    ],
    [
      "refuses a second, independent first state (split brain)",
      { ...first, digest: OTHER_DIGEST },
      [coordinatorPod(0)],
      "conflicting_state",
    ],
    ["accepts a first state equal to the head", first, [coordinatorPod(0)], "accept"],
  ] as const)("%s", (_why, request, others, want) => {
    const head = headWith([memberOf(coordinatorPod(0))]);
    expect(outcome(decide(withoutCondition(coordinatorPod(1)), request, [...others], head))).toBe(want);
  });

  it("refuses a namesake source of another StatefulSet: its record is not this head's", () => {
    const impostor = coordinatorPod(0);
    impostor.metadata!.ownerReferences![0]!.uid = "11111111-2222-4333-8444-555555555555";
    // The real coordinator-0 is gone; the namesake is not a pod of this StatefulSet.
    expect(outcome(decide(withoutCondition(coordinatorPod(1)), fromPeer, [impostor], EMPTY))).toBe("accept");
    const head = headWith([memberOf(coordinatorPod(0), { digest: OTHER_DIGEST })]);
    expect(outcome(decide(withoutCondition(coordinatorPod(1)), fromPeer, [coordinatorPod(0)], head))).toBe(
      "source_digest_mismatch",
    );
  });

  it("marks a stale pod that swapped the head in Updated, naming both states in the Event", () => {
    const NEW = `sha256:${"cd".repeat(32)}`;
    const head = headWith([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(coordinatorPod(1))], {
      committed: {
        digest: NEW,
        parent: DIGEST,
        by: "coordinator-0",
        at: "2026-11-23T21:50:00Z",
        holders: {},
      },
      history: [DIGEST, NEW],
    });
    const stale = setCondition(coordinatorPod(1), "False", "StateStale", "stale");
    const decision = decide(stale, { ...fromPeer, digest: NEW }, [coordinatorPod(0)], head);
    expect(decision).toMatchObject({
      kind: "accept",
      desired: { status: "True", reason: "Updated" },
      events: [
        { reason: "Updated", message: `Updated from state ${DIGEST} to ${NEW} from peer coordinator-0` },
      ],
    });
    expect(outcome(decide(stale, fromPeer, [coordinatorPod(0)], head))).toBe("source_digest_mismatch");
    expect(outcome(decide(stale, { ...fromPeer, source: null }, [coordinatorPod(0)], head))).toBe(
      "stale_state",
    );
  });
});

describe("decideConfirmation: peers that failed to deliver the state", () => {
  const failedPeers = [
    { pod: "coordinator-2", reason: "no answer within 15000 ms" },
    { pod: "coordinator-3", reason: "ECONNRESET: aborted" },
  ];
  const head = headWith([memberOf(coordinatorPod(0))]);
  const withFailures: RecoveredRequest = { ...fromPeer, failedPeers };

  it("adds one Warning naming each failed peer, the digest and the source, when the condition changes", () => {
    const decision = decide(withoutCondition(coordinatorPod(1)), withFailures, [coordinatorPod(0)], head);
    if (decision.kind !== "accept") throw new Error("accepted");
    expect(decision.events).toEqual([
      {
        type: "Normal",
        reason: "RecoveredFromPeer",
        message: `Recovered state ${DIGEST} from peer coordinator-0`,
      },
      {
        type: "Warning",
        reason: "PeerTransferFailed",
        message:
          `Peer coordinator-2 failed to deliver state ${DIGEST}: no answer within 15000 ms; ` +
          `peer coordinator-3 failed to deliver state ${DIGEST}: ECONNRESET: aborted; ` +
          "recovered from peer coordinator-0",
      },
    ]);
    expect(decision.failedPeers).toBe(2);
  });

  it("warns with the Updated of a pod that caught up after peers failed", () => {
    const stale = setCondition(coordinatorPod(1), "False", "StateStale", "stale");
    const decision = decide(stale, withFailures, [coordinatorPod(0)], head);
    if (decision.kind !== "accept") throw new Error("accepted");
    expect(decision.events.map((e) => `${e.type} ${e.reason}`)).toEqual([
      "Normal Updated",
      "Warning PeerTransferFailed",
    ]);
    expect(decision.failedPeers).toBe(2);
  });

  it("warns of nothing when the condition already says the same (a repeated confirmation)", () => {
    const once = decide(withoutCondition(coordinatorPod(1)), withFailures, [coordinatorPod(0)], head);
    if (once.kind !== "accept") throw new Error("accepted");
    const confirmed = setCondition(coordinatorPod(1), "True", once.desired.reason, once.desired.message);
    const again = decide(confirmed, withFailures, [coordinatorPod(0)], head);
    expect(again).toMatchObject({ kind: "accept", events: [], failedPeers: 0 });
  });

  it("warns of nothing for an empty list", () => {
    const decision = decide(
      withoutCondition(coordinatorPod(1)),
      { ...fromPeer, failedPeers: [] },
      [coordinatorPod(0)],
      head,
    );
    expect(decision).toMatchObject({ kind: "accept", failedPeers: 0 });
    if (decision.kind !== "accept") throw new Error("accepted");
    expect(decision.events.map((e) => e.type)).toEqual(["Normal"]);
  });
});
