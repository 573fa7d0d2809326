// The rule that decides who receives the state, as a table: the serving pod is coordinator-0,
// the candidate is what a verified peer token names plus the pod of that name as the
// apiserver has it now.
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { decidePeerAccess } from "../../../src/handler/peer-access.ts";
import { owningStatefulSet } from "../../../src/handler/pod.ts";
import type { PodIdentity } from "../../../src/identity/index.ts";
import { parseLabelSelector } from "../../../src/kube/label-selector.ts";
import { coordinatorPod, terminating, uidOf } from "./pods.ts";

const selector = parseLabelSelector("app.kubernetes.io/name=coordinator");
const servingPod = coordinatorPod(0);
const serving = { pod: servingPod, statefulSet: owningStatefulSet(servingPod)! };

/** coordinator-1's token: the identity a verified peer token names. */
const token: PodIdentity = {
  namespace: "default",
  serviceAccount: "coordinator",
  podName: "coordinator-1",
  podUid: uidOf(1),
};

const member = () => coordinatorPod(1);
const change = (edit: (pod: V1Pod) => void) => () => {
  const pod = member();
  edit(pod);
  return pod;
};

/** A bare pod that took a member's name: same SA, opted out of injection, owned by nothing. */
const namesake = change((pod) => {
  delete pod.metadata!.ownerReferences;
  pod.metadata!.annotations = { "coordinator-ha.io/inject": "false" };
  pod.spec!.readinessGates = [];
  pod.spec!.initContainers = [];
});

const table: [string, Partial<PodIdentity>, () => V1Pod | undefined, string][] = [
  ["a live, gated member of the same StatefulSet", {}, member, "allowed"],
  ["a member whose token names it by name and uid of today", {}, member, "allowed"],
  ["a deleted pod's token", {}, () => undefined, "pod_gone"],
  [
    "the token of a pod since replaced under the same name",
    {},
    change((p) => (p.metadata!.uid = "new-uid")),
    "uid_mismatch",
  ],
  ["a bare pod that took a member's name (same SA, no owner, no gate)", {}, namesake, "not_member"],
  [
    "a pod controlled by another StatefulSet of the same name (recreated: new uid)",
    {},
    change((p) => (p.metadata!.ownerReferences![0]!.uid = "another-sts-uid")),
    "not_member",
  ],
  [
    "a pod whose StatefulSet owner is not its controller",
    {},
    change((p) => (p.metadata!.ownerReferences![0]!.controller = false)),
    "not_member",
  ],
  [
    "a pod controlled by a ReplicaSet",
    {},
    change((p) => (p.metadata!.ownerReferences![0]!.kind = "ReplicaSet")),
    "not_member",
  ],
  ["a pod without the readiness gate", {}, change((p) => (p.spec!.readinessGates = [])), "not_gated"],
  ["a terminating member", {}, () => terminating(member()), "terminating"],
  [
    "a member that no longer matches the selector",
    {},
    change((p) => (p.metadata!.labels = { other: "x" })),
    "not_selected",
  ],
  [
    "a pod that runs as another service account than the token's",
    {},
    change((p) => (p.spec!.serviceAccountName = "default")),
    "service_account_mismatch",
  ],
  [
    "a token of another service account than the serving pod's",
    { serviceAccount: "default" },
    change((p) => (p.spec!.serviceAccountName = "default")),
    "service_account_mismatch",
  ],
  [
    "a pod in another namespace",
    { namespace: "other" },
    change((p) => (p.metadata!.namespace = "other")),
    "other_namespace",
  ],
  ["the serving pod itself", { podName: "coordinator-0", podUid: uidOf(0) }, () => coordinatorPod(0), "self"],
  ["a token with the serving pod's uid under another name", { podUid: uidOf(0) }, member, "self"],
];

describe("decidePeerAccess", () => {
  it.each(table)("%s -> %s", (_name, identity, live, expected) => {
    const decision = decidePeerAccess(serving, { ...token, ...identity }, live(), selector);
    expect(decision.allowed ? "allowed" : decision.reason).toBe(expected);
    if (!decision.allowed) expect(decision.message).toMatch(/^pod [a-z-]+\/coordinator-[01]/);
  });
});
