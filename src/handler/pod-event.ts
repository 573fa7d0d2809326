// The Kubernetes Events the handler records on a pod, so that `kubectl describe pod` and
// `kubectl get events` tell the recovery story next to the kubelet's own.
import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";

export const REPORTING_COMPONENT = "coordinator-ha-handler";

export interface PodEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** A core/v1 Event about `pod`, reported by this handler replica (`instance`). */
export function eventFor(pod: V1Pod, event: PodEvent, now: Date, instance: string): CoreV1Event {
  const name = pod.metadata?.name ?? "";
  return {
    metadata: {
      // <object>.<unique suffix>, as the kubelet names its events; the apiserver picks the suffix.
      generateName: `${name}.`,
      namespace: pod.metadata?.namespace,
    },
    involvedObject: {
      apiVersion: "v1",
      kind: "Pod",
      namespace: pod.metadata?.namespace,
      name,
      uid: pod.metadata?.uid,
    },
    type: event.type,
    reason: event.reason,
    message: event.message,
    source: { component: REPORTING_COMPONENT },
    reportingComponent: REPORTING_COMPONENT,
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
