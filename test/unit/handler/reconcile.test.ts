// The gate rules of the watch (src/handler/reconcile.ts, G2-G8), as tables.
import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import type { HeadSpec } from "../../../src/handler/head/state-head.ts";
import {
  AWAITING_NO_PEER,
  AWAITING_NOT_STATEFULSET,
  AWAITING_PEER,
  reconcilePod,
  SWAP_GRACE_MS,
} from "../../../src/handler/reconcile.ts";
import {
  coordinatorPod,
  DIGEST,
  headWith,
  memberOf,
  notReady,
  OTHER_DIGEST,
  restarted,
  setCondition,
  terminating,
  withoutCondition,
} from "./pods.ts";

const NEW = `sha256:${"cd".repeat(32)}`;
const COMMITTED_AT = "2026-11-23T22:00:00.000Z";
const NOW = new Date("2026-11-23T22:00:10.000Z");
const LATER = new Date(Date.parse(COMMITTED_AT) + SWAP_GRACE_MS + 1);

/** The head after coordinator-0 committed NEW (child of DIGEST); `members` as given. */
function updated(members: Parameters<typeof headWith>[0], holders: Record<string, string> = {}): HeadSpec {
  return headWith(members, {
    committed: { digest: NEW, parent: DIGEST, by: "coordinator-0", at: COMMITTED_AT, holders },
    history: [DIGEST, NEW],
  });
}

function reconcile(pod: V1Pod, head: HeadSpec | undefined, others: V1Pod[] = [], now = NOW) {
  return reconcilePod(pod, [pod, ...others], head, now);
}

describe("gates of recovered pods", () => {
  const pod1 = coordinatorPod(1);
  const rows: {
    rule: string;
    why: string;
    pod: V1Pod;
    head: HeadSpec | undefined;
    now?: Date;
    want:
      { status?: string; reason?: string; message?: RegExp; event?: string; recheck?: number } | undefined;
  }[] = [
    {
      rule: "-",
      why: "holds the head, app not restarted: nothing",
      pod: pod1,
      head: headWith([memberOf(pod1)]),
      want: undefined,
    },
    {
      rule: "G1",
      why: "True without a member record (being written): nothing",
      pod: restarted(coordinatorPod(1), 5),
      head: headWith([]),
      want: undefined,
    },
    {
      rule: "G1",
      why: "a member record of a predecessor (other uid) is no record",
      pod: restarted(coordinatorPod(1), 5),
      head: headWith([memberOf(pod1, { uid: "predecessor" })]),
      want: undefined,
    },
    {
      rule: "G2",
      why: "an app container restarted past the recorded count",
      pod: restarted(coordinatorPod(1), 1),
      head: headWith([memberOf(pod1)]),
      want: {
        status: "False",
        reason: "AppRestarted",
        message: /App container coordinator restarted/,
        event: "Warning",
      },
    },
    {
      rule: "G2",
      why: "a container missing from the record counts as 0 restarts",
      pod: restarted(coordinatorPod(1), 1),
      head: headWith([memberOf(pod1, { restarts: {} })]),
      want: { reason: "AppRestarted" },
    },
    {
      rule: "-",
      why: "confirmed again after the restart: nothing",
      pod: restarted(coordinatorPod(1), 3),
      head: headWith([memberOf(pod1, { restarts: { coordinator: 3 } })]),
      want: undefined,
    },
    {
      rule: "G3",
      why: "behind the head, but it held the head at the commit: swapping, look again after the grace",
      pod: pod1,
      head: updated([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(pod1)], {
        "coordinator-1": pod1.metadata!.uid!,
      }),
      want: { recheck: SWAP_GRACE_MS - 10_000 },
    },
    {
      rule: "G4",
      why: "a holder that did not swap within the grace is stale",
      pod: pod1,
      head: updated([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(pod1)], {
        "coordinator-1": pod1.metadata!.uid!,
      }),
      now: LATER,
      want: { status: "False", reason: "StateStale" },
    },
    {
      rule: "G4",
      why: "an ancestor of the head: StateStale, naming its digest, the head's and a pod that holds it",
      pod: pod1,
      head: updated([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(pod1)]),
      want: {
        status: "False",
        reason: "StateStale",
        message:
          /^Holds state sha256:5f0c2b0d6f9d…, the head is sha256:cdcdcdcdcdcd…, held by pod coordinator-0;/,
        event: "Warning",
      },
    },
    {
      rule: "G5",
      why: "a state outside the history (a second recorded state): StateConflict",
      pod: pod1,
      head: headWith([memberOf(coordinatorPod(0)), memberOf(pod1, { digest: OTHER_DIGEST })]),
      want: {
        status: "False",
        reason: "StateConflict",
        message: /Holds state sha256:abababababab…, which is not in the StatefulSet's history/,
        event: "Warning",
      },
    },
    {
      rule: "G6",
      why: "StateStale, and its record is the head now: True Updated",
      pod: setCondition(coordinatorPod(1), "False", "StateStale", "stale"),
      head: updated([memberOf(pod1, { digest: NEW })]),
      want: { status: "True", reason: "Updated", event: "Normal" },
    },
    {
      rule: "G6",
      why: "not while its app restarted since: the sidecar confirms again",
      pod: restarted(setCondition(coordinatorPod(1), "False", "StateStale", "stale"), 2),
      head: updated([memberOf(pod1, { digest: NEW })]),
      want: undefined,
    },
    {
      rule: "G7",
      why: "StateStale, and the head moved on: the message follows",
      pod: setCondition(coordinatorPod(1), "False", "StateStale", "Holds state x, the head is y"),
      head: updated([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(pod1)]),
      want: { status: "False", reason: "StateStale", message: /the head is sha256:cdcd/ },
    },
  ];
  it.each(rows)("$rule: $why", ({ pod, head, now, want }) => {
    const change = reconcile(pod, head, [], now);
    if (want === undefined) {
      expect(change).toBeUndefined();
      return;
    }
    if (want.recheck !== undefined) {
      expect(change).toEqual({ rule: "G3", recheckAfterMs: want.recheck });
      return;
    }
    if (want.status) expect(change?.desired?.status).toBe(want.status);
    if (want.reason) expect(change?.desired?.reason).toBe(want.reason);
    if (want.message) expect(change?.desired?.message).toMatch(want.message);
    if (want.event) expect(change?.event).toMatchObject({ type: want.event, reason: want.reason });
  });

  it("writes nothing more once the gate is reset (every replica computes the same)", () => {
    const head = updated([memberOf(coordinatorPod(0), { digest: NEW }), memberOf(pod1)]);
    const change = reconcile(coordinatorPod(1), head)!;
    const pod = setCondition(coordinatorPod(1), "False", change.desired!.reason, change.desired!.message);
    expect(reconcile(pod, head)).toBeUndefined();
  });

  it("ignores restarts of the recovery sidecar", () => {
    const pod = coordinatorPod(0);
    pod.status!.initContainerStatuses![0]!.restartCount = 4;
    expect(reconcile(pod, headWith([memberOf(pod)]))).toBeUndefined();
  });
});

describe("waiting pods", () => {
  const head = headWith([memberOf(coordinatorPod(0))]);

  it("tells a pod without peers to wait for its user's set", () => {
    const change = reconcile(withoutCondition(coordinatorPod(0)), undefined);
    expect(change).toEqual({
      rule: "G8",
      desired: { status: "False", reason: "AwaitingState", message: AWAITING_NO_PEER },
    });
    expect(AWAITING_NO_PEER).toContain('"coordinator-ha set"');
  });

  it("tells a pod with a Ready peer that holds the head to wait for its sidecar", () => {
    const change = reconcile(withoutCondition(coordinatorPod(1)), head, [coordinatorPod(0)]);
    expect(change?.desired?.message).toBe(AWAITING_PEER);
  });

  it("does not count a peer that is recovered but not Ready", () => {
    const change = reconcile(withoutCondition(coordinatorPod(1)), head, [notReady(coordinatorPod(0))]);
    expect(change?.desired?.message).toBe(AWAITING_NO_PEER);
  });

  it("updates the message when a peer appears, and then stays quiet", () => {
    const pod = withoutCondition(coordinatorPod(1));
    setCondition(pod, "False", "AwaitingState", AWAITING_NO_PEER);
    expect(reconcile(pod, head)).toBeUndefined();
    expect(reconcile(pod, head, [coordinatorPod(0)])?.desired?.message).toBe(AWAITING_PEER);
  });

  it("says why a pod outside a StatefulSet never recovers", () => {
    const pod = withoutCondition(coordinatorPod(0));
    pod.metadata!.ownerReferences = [];
    expect(reconcile(pod, head)?.desired?.message).toBe(AWAITING_NOT_STATEFULSET);
  });

  it("leaves an AppRestarted pod to its sidecar", () => {
    const pod = setCondition(restarted(coordinatorPod(0), 1), "False", "AppRestarted", "restarted");
    expect(reconcile(pod, head)).toBeUndefined();
  });

  it("leaves pods without the gate, and terminating pods, alone", () => {
    const ungated = withoutCondition(coordinatorPod(0));
    ungated.spec!.readinessGates = [];
    expect(reconcile(ungated, head)).toBeUndefined();
    expect(reconcile(terminating(withoutCondition(coordinatorPod(0))), head)).toBeUndefined();
  });
});
