import { describe, expect, it } from "vitest";
import type { PodIdentity } from "../../../src/identity/index.ts";
import { authorizePeer, statefulSetOf } from "../../../src/recovery/peer-authz.ts";

const self: PodIdentity = {
  namespace: "ns",
  serviceAccount: "coordinator",
  podName: "coordinator-0",
  podUid: "u0",
};
const peer: PodIdentity = { ...self, podName: "coordinator-1", podUid: "u1" };

describe("statefulSetOf", () => {
  it.each([
    ["coordinator-0", "coordinator"],
    ["coordinator-12", "coordinator"],
    ["my-coordinator-3", "my-coordinator"],
    ["coordinator", undefined],
    ["coordinator-", undefined],
    ["coordinator-01", undefined],
    ["coordinator-abc12", undefined],
    ["-1", undefined],
  ])("%s -> %s", (pod, sts) => {
    expect(statefulSetOf(pod)).toBe(sts);
  });
});

describe("authorizePeer", () => {
  it("allows another pod of the same StatefulSet", () => {
    expect(authorizePeer(self, peer)).toEqual({ ok: true });
  });

  it.each([
    ["another namespace", { namespace: "other" }, /namespace ns/],
    ["another service account", { serviceAccount: "default" }, /service account coordinator/],
    ["another StatefulSet", { podName: "other-1" }, /StatefulSet coordinator/],
    ["a prefix-sharing StatefulSet", { podName: "coordinator-x-1" }, /StatefulSet coordinator/],
    ["a pod that is not a StatefulSet pod", { podName: "coordinator-7d9f8-abcde" }, /StatefulSet/],
    ["itself by name", { podName: "coordinator-0", podUid: "new" }, /this pod/],
    ["itself by uid", { podName: "coordinator-2", podUid: "u0" }, /this pod/],
  ])("refuses %s", (_name, change, reason) => {
    const decision = authorizePeer(self, { ...peer, ...change });
    expect(decision.ok).toBe(false);
    expect(decision.ok ? "" : decision.reason).toMatch(reason);
  });

  it("refuses everyone when this pod is not a StatefulSet pod", () => {
    const decision = authorizePeer({ ...self, podName: "standalone" }, { ...peer, podName: "standalone-1" });
    expect(decision).toEqual({ ok: false, reason: expect.stringMatching(/\(none\)/) });
  });
});
