import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { parseRecord } from "../../../src/handler/condition.ts";
import {
  AWAITING_NO_PEER,
  AWAITING_NOT_STATEFULSET,
  AWAITING_PEER,
  reconcilePod,
} from "../../../src/handler/reconcile.ts";
import {
  CERT,
  coordinatorPod,
  DIGEST,
  notReady,
  recorded,
  restarted,
  setCondition,
  terminating,
  withoutCondition,
} from "./pods.ts";

function reconcile(pod: V1Pod, others: V1Pod[] = []) {
  return reconcilePod(pod, [pod, ...others]);
}

describe("restart detection", () => {
  it("leaves a recovered pod alone while its app has not restarted", () => {
    expect(reconcile(coordinatorPod(0))).toBeUndefined();
  });

  it("resets the gate when an app container restarted past the recorded count", () => {
    const pod = restarted(coordinatorPod(0), 1);
    const change = reconcile(pod);
    expect(change?.desired).toMatchObject({ status: "False", reason: "AppRestarted" });
    expect(change?.desired.message).toContain("App container coordinator restarted");
    // The record stays, so that the digest the pod's volume holds remains known.
    expect(parseRecord(change?.desired.message)).toEqual({
      digest: DIGEST,
      certSha256: CERT,
      restarts: { coordinator: 0 },
    });
    expect(change?.event).toMatchObject({ type: "Warning", reason: "AppRestarted" });
  });

  it("does not reset a gate confirmed after the restart", () => {
    const pod = recorded(restarted(coordinatorPod(0), 3), { restarts: { coordinator: 3 } });
    expect(reconcile(pod)).toBeUndefined();
  });

  it("counts a container missing from the record as 0 restarts", () => {
    const pod = restarted(recorded(coordinatorPod(0), { restarts: {} }), 1);
    expect(reconcile(pod)?.desired.reason).toBe("AppRestarted");
  });

  it("ignores restarts of the recovery sidecar", () => {
    const pod = coordinatorPod(0);
    pod.status!.initContainerStatuses![0]!.restartCount = 4;
    expect(reconcile(pod)).toBeUndefined();
  });

  it("writes nothing more once the gate is reset (every replica computes the same)", () => {
    const pod = restarted(coordinatorPod(0), 1);
    const change = reconcile(pod)!;
    setCondition(pod, "False", change.desired.reason, change.desired.message);
    expect(reconcile(pod)).toBeUndefined();
  });

  it("leaves a True condition without a readable record alone", () => {
    const pod = restarted(setCondition(coordinatorPod(0), "True", "Initialized", "set by hand"), 5);
    expect(reconcile(pod)).toBeUndefined();
  });
});

describe("waiting pods", () => {
  it("tells a pod without peers to wait for its user's set", () => {
    const change = reconcile(withoutCondition(coordinatorPod(0)));
    expect(change).toEqual({
      desired: { status: "False", reason: "AwaitingState", message: AWAITING_NO_PEER },
    });
    expect(AWAITING_NO_PEER).toContain('"coordinator-ha set"');
  });

  it("tells a pod with a Ready, recovered peer to wait for its sidecar", () => {
    const change = reconcile(withoutCondition(coordinatorPod(1)), [coordinatorPod(0)]);
    expect(change?.desired.message).toBe(AWAITING_PEER);
  });

  it("does not count a peer that is recovered but not Ready", () => {
    const change = reconcile(withoutCondition(coordinatorPod(1)), [notReady(coordinatorPod(0))]);
    expect(change?.desired.message).toBe(AWAITING_NO_PEER);
  });

  it("updates the message when a peer appears, and then stays quiet", () => {
    const pod = withoutCondition(coordinatorPod(1));
    setCondition(pod, "False", "AwaitingState", AWAITING_NO_PEER);
    expect(reconcile(pod)).toBeUndefined();
    expect(reconcile(pod, [coordinatorPod(0)])?.desired.message).toBe(AWAITING_PEER);
  });

  it("says why a pod outside a StatefulSet never recovers", () => {
    const pod = withoutCondition(coordinatorPod(0));
    pod.metadata!.ownerReferences = [];
    expect(reconcile(pod)?.desired.message).toBe(AWAITING_NOT_STATEFULSET);
  });

  it("leaves an AppRestarted pod to its sidecar", () => {
    const pod = setCondition(restarted(coordinatorPod(0), 1), "False", "AppRestarted", "restarted");
    expect(reconcile(pod)).toBeUndefined();
  });

  it("leaves pods without the gate, and terminating pods, alone", () => {
    const ungated = withoutCondition(coordinatorPod(0));
    ungated.spec!.readinessGates = [];
    expect(reconcile(ungated)).toBeUndefined();
    expect(reconcile(terminating(withoutCondition(coordinatorPod(0))))).toBeUndefined();
  });
});
