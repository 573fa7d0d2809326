// Writes the kubelet-owned part of a pod's status, as the kubelet's status manager does
// (statusutil.PatchPodStatus): a strategic-merge patch of pods/status that carries the pod's
// UID as a precondition. Conditions merge by type, and the patch lists only the kubelet's
// conditions, so a condition that someone else owns (the coordinator-ha gate) is never
// clobbered. An unchanged status is not written.
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import type { Pod, PodStatus } from "../kube/wire.ts";
import { isKubeletCondition } from "./status.ts";

/** Status fields the agent owns (all but others' conditions). */
const OWNED_FIELDS = [
  "phase",
  "reason",
  "message",
  "hostIP",
  "hostIPs",
  "podIP",
  "podIPs",
  "startTime",
  "qosClass",
  "observedGeneration",
  "containerStatuses",
  "initContainerStatuses",
] as const;

const CONDITION_FIELDS = ["reason", "message", "observedGeneration", "lastProbeTime"] as const;

/** JSON with sorted keys and without null/undefined members, for comparing statuses. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter(
          (k) =>
            (value as Record<string, unknown>)[k] !== null &&
            (value as Record<string, unknown>)[k] !== undefined,
        )
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

function ownedView(status: PodStatus | undefined): unknown {
  const view: Record<string, unknown> = {};
  for (const f of OWNED_FIELDS) view[f] = status?.[f];
  view["conditions"] = (status?.conditions ?? [])
    .filter((c) => isKubeletCondition(c.type))
    .sort((a, b) => (a.type < b.type ? -1 : 1));
  return canonical(view);
}

/** Whether the apiserver already has this status (as far as the agent owns it). */
export function statusUnchanged(current: PodStatus | undefined, next: PodStatus): boolean {
  return JSON.stringify(ownedView(current)) === JSON.stringify(ownedView(next));
}

/**
 * The patch body. Fields the new status lacks are sent as null, so that stale values (a
 * reason of an earlier phase, the message of a condition that turned True) are removed.
 */
export function statusPatch(uid: string, next: PodStatus): Record<string, unknown> {
  const status: Record<string, unknown> = {};
  for (const f of OWNED_FIELDS) status[f] = next[f] ?? null;
  // podIPs and hostIPs merge by ip; a new sandbox's address must replace the old one, not join it.
  for (const f of ["podIPs", "hostIPs"] as const) {
    if (next[f]) status[f] = [...next[f], { $patch: "replace" }];
  }
  status["conditions"] = (next.conditions ?? [])
    .filter((c) => isKubeletCondition(c.type))
    .map((c) => {
      const cond: Record<string, unknown> = { ...c };
      for (const f of CONDITION_FIELDS) cond[f] = c[f] ?? null;
      return cond;
    });
  return { metadata: { uid }, status };
}

export class StatusWriter {
  private readonly api: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  /** Patches the status (the caller decides whether it changed). */
  async write(pod: Pod, next: PodStatus): Promise<void> {
    await this.api.patchNamespacedPodStatus(
      {
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "",
        body: statusPatch(pod.metadata?.uid ?? "", next),
      },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
  }

  /** The final delete of a terminated pod: no grace, and only this very pod (UID precondition). */
  async deleteFinally(pod: Pod): Promise<void> {
    await this.api.deleteNamespacedPod({
      name: pod.metadata?.name ?? "",
      namespace: pod.metadata?.namespace ?? "",
      gracePeriodSeconds: 0,
      body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
    });
  }
}
