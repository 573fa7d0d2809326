// Facts about a pod that the handler's decisions rest on, read from a V1Pod as the
// apiserver returns it (from a live GET or from the watch cache alike).
import type { V1Pod } from "@kubernetes/client-node";
import { PEER_PORT_NAME, RECOVERED_CONDITION, SIDECAR_NAME } from "../names.ts";

export interface StatefulSetRef {
  name: string;
  uid: string;
}

/** Log fields for every line about a pod. */
export function podFields(pod: V1Pod): { namespace: string; pod: string } {
  return { namespace: pod.metadata?.namespace ?? "", pod: pod.metadata?.name ?? "" };
}

export function isGated(pod: V1Pod): boolean {
  return pod.spec?.readinessGates?.some((g) => g.conditionType === RECOVERED_CONDITION) ?? false;
}

/** The StatefulSet that controls the pod (its controller ownerReference), if any. */
export function owningStatefulSet(pod: V1Pod): StatefulSetRef | undefined {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller === true);
  if (owner?.kind !== "StatefulSet" || owner.apiVersion !== "apps/v1") return undefined;
  return { name: owner.name, uid: owner.uid };
}

export function isTerminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
}

export function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** The service account the pod runs as; the apiserver defaults an empty one to "default". */
export function serviceAccountOf(pod: V1Pod): string {
  return pod.spec?.serviceAccountName || "default";
}

/**
 * restartCount of every app container (spec.containers; the recovery sidecar is a native
 * sidecar among the init containers, and its restarts do not touch the app's state).
 */
export function appRestartCounts(pod: V1Pod): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const container of pod.spec?.containers ?? []) {
    const status = pod.status?.containerStatuses?.find((s) => s.name === container.name);
    counts[container.name] = status?.restartCount ?? 0;
  }
  return counts;
}

/** The recovery sidecar's peer API port (containerPort named cha-peer). */
export function peerPort(pod: V1Pod): number | undefined {
  const sidecar = pod.spec?.initContainers?.find((c) => c.name === SIDECAR_NAME);
  return sidecar?.ports?.find((p) => p.name === PEER_PORT_NAME)?.containerPort;
}
