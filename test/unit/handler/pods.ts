// Pods of the StatefulSet "coordinator" as the apiserver returns them, derived from one
// real-layout fixture (fixtures/coordinator-0.json: injected, Running, Ready, recovered).
import { readFileSync } from "node:fs";
import type { V1Pod } from "@kubernetes/client-node";
import type { HeadSpec, Member } from "../../../src/handler/head/state-head.ts";
import { RECOVERED_CONDITION } from "../../../src/names.ts";

const BASE = JSON.parse(
  readFileSync(new URL("./fixtures/coordinator-0.json", import.meta.url), "utf8"),
) as V1Pod;

export const STATEFULSET_UID = "9a1f3c57-1d0e-4c8e-b0a4-2f6c1e5d7b90";
export const DIGEST = "sha256:5f0c2b0d6f9d3e1a7c4b8e2f1a0d9c8b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d";
export const OTHER_DIGEST = `sha256:${"ab".repeat(32)}`;
export const CERT = "8c1e0b7f6a5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b";
export const OTHER_CERT = "cd".repeat(32);

export function uidOf(ordinal: number): string {
  return `0b6e4a6c-2c4e-4b44-9a43-7c0e3f0a1d${String(ordinal + 1).padStart(2, "0")}`;
}

/** coordinator-<ordinal>: Ready and recovered (Initialized, DIGEST, CERT, no restarts). */
export function coordinatorPod(ordinal: number): V1Pod {
  const pod = structuredClone(BASE);
  const name = `coordinator-${ordinal}`;
  pod.metadata!.name = name;
  pod.metadata!.uid = uidOf(ordinal);
  pod.metadata!.labels!["apps.kubernetes.io/pod-index"] = String(ordinal);
  pod.metadata!.labels!["statefulset.kubernetes.io/pod-name"] = name;
  pod.spec!.hostname = name;
  pod.status!.podIP = `10.244.0.${12 + ordinal}`;
  pod.status!.podIPs = [{ ip: pod.status!.podIP }];
  return pod;
}

export function setCondition(pod: V1Pod, status: "True" | "False", reason: string, message: string): V1Pod {
  const conditions = (pod.status!.conditions ?? []).filter((c) => c.type !== RECOVERED_CONDITION);
  conditions.push({
    type: RECOVERED_CONDITION,
    status,
    reason,
    message,
    lastTransitionTime: "2026-11-23T21:41:01Z" as unknown as Date,
  });
  pod.status!.conditions = conditions;
  return pod;
}

/** The member record a confirmation of `pod` wrote (DIGEST, CERT, no restarts by default). */
export function memberOf(pod: V1Pod, over: Partial<Member> = {}): [string, Member] {
  return [
    pod.metadata!.name!,
    {
      uid: pod.metadata!.uid!,
      digest: DIGEST,
      certSha256: CERT,
      source: null,
      restarts: { coordinator: 0 },
      at: "2026-11-23T21:41:01Z",
      ...over,
    },
  ];
}

/** The StateHead of StatefulSet "coordinator": head DIGEST (the first state), `members` recorded. */
export function headWith(members: [string, Member][], over: Partial<HeadSpec> = {}): HeadSpec {
  return {
    statefulSet: { name: "coordinator", uid: STATEFULSET_UID },
    committed: { digest: DIGEST, parent: null, by: "coordinator-0", at: "2026-11-23T21:41:01Z", holders: {} },
    history: [DIGEST],
    proposal: null,
    members: Object.fromEntries(members),
    ...over,
  };
}

export function withoutCondition(pod: V1Pod): V1Pod {
  pod.status!.conditions = pod.status!.conditions!.filter((c) => c.type !== RECOVERED_CONDITION);
  return notReady(pod);
}

/** Not Ready: what the kubelet reports while the gate (or a container) is not ready. */
export function notReady(pod: V1Pod): V1Pod {
  for (const c of pod.status!.conditions!) if (c.type === "Ready") c.status = "False";
  return pod;
}

export function restarted(pod: V1Pod, count: number): V1Pod {
  pod.status!.containerStatuses![0]!.restartCount = count;
  return pod;
}

export function terminating(pod: V1Pod): V1Pod {
  pod.metadata!.deletionTimestamp = "2026-11-23T22:00:00Z" as unknown as Date;
  return pod;
}
