import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { checkCaller, checkWatched } from "../../../src/handler/caller.ts";
import type { PodIdentity } from "../../../src/identity/index.ts";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";
import { coordinatorPod, STATEFULSET_UID, terminating, uidOf } from "./pods.ts";

const selector = parseLabelSelector("app.kubernetes.io/name=coordinator");
const identity: PodIdentity = {
  namespace: "default",
  serviceAccount: "coordinator",
  podName: "coordinator-0",
  podUid: uidOf(0),
};

function reason(who: PodIdentity, pod: V1Pod | undefined): string {
  const check = checkCaller(who, pod, selector);
  return check.ok ? "ok" : check.refusal.reason;
}

describe("checkCaller", () => {
  it("accepts the token's own pod and names its StatefulSet", () => {
    const check = checkCaller(identity, coordinatorPod(0), selector);
    expect(check).toMatchObject({ ok: true, statefulSet: { name: "coordinator", uid: STATEFULSET_UID } });
  });

  it("refuses a replayed token of a deleted pod", () => {
    expect(reason(identity, undefined)).toBe("pod_gone");
  });

  it("refuses the token of a deleted pod whose namesake was recreated (uid mismatch)", () => {
    const recreated = coordinatorPod(0);
    recreated.metadata!.uid = "f7a0c9d2-0000-4000-8000-000000000000";
    expect(reason(identity, recreated)).toBe("uid_mismatch");
  });

  it("refuses a token of another pod (its uid is not this pod's)", () => {
    expect(reason({ ...identity, podUid: uidOf(1) }, coordinatorPod(0))).toBe("uid_mismatch");
  });

  it("refuses a token of another service account", () => {
    expect(reason({ ...identity, serviceAccount: "default" }, coordinatorPod(0))).toBe(
      "service_account_mismatch",
    );
  });

  it("treats an empty serviceAccountName as the default service account", () => {
    const pod = coordinatorPod(0);
    delete pod.spec!.serviceAccountName;
    expect(reason({ ...identity, serviceAccount: "default" }, pod)).toBe("ok");
    expect(reason(identity, pod)).toBe("service_account_mismatch");
  });

  it("refuses a pod that the selector does not select", () => {
    const pod = coordinatorPod(0);
    pod.metadata!.labels!["app.kubernetes.io/name"] = "other";
    expect(reason(identity, pod)).toBe("not_selected");
  });

  it("refuses a pod without the readiness gate", () => {
    const pod = coordinatorPod(0);
    pod.spec!.readinessGates = [{ conditionType: "example.com/other" }];
    expect(reason(identity, pod)).toBe("not_gated");
  });

  it.each([
    ["no owner", () => undefined],
    [
      "a ReplicaSet",
      () => [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "c", uid: "u", controller: true }],
    ],
    [
      "a StatefulSet that is not its controller",
      () => [{ apiVersion: "apps/v1", kind: "StatefulSet", name: "c", uid: "u" }],
    ],
  ])("refuses a pod owned by %s", (_why, owners) => {
    const pod = coordinatorPod(0);
    pod.metadata!.ownerReferences = owners();
    expect(reason(identity, pod)).toBe("not_statefulset");
  });

  it("refuses a terminating pod", () => {
    expect(reason(identity, terminating(coordinatorPod(0)))).toBe("terminating");
  });
});

describe("checkWatched", () => {
  it("lets every namespace through when the handler watches all of them", () => {
    expect(checkWatched(identity, undefined)).toBeUndefined();
  });

  it("lets a watched namespace through, and refuses another one, naming it and the flag", () => {
    expect(checkWatched(identity, ["team-a", "default"])).toBeUndefined();
    const refusal = checkWatched(identity, ["team-a", "team-b"]);
    expect(refusal?.reason).toBe("namespace_not_watched");
    expect(refusal?.message).toContain("namespace default, which this handler does not watch");
    expect(refusal?.message).toContain("--namespace team-a,team-b");
  });
});
