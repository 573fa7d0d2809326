// Gauges about the gated pods, computed from the handler's watch cache when Prometheus
// scrapes: nothing is remembered, and a deleted pod's series goes with it. They feed the
// chart's alerts (a pod waiting for its state too long) and its dashboard (gates by reason,
// time to Ready). The series per pod are bounded by the number of Coordinator pods. The pod's
// labels are pod_namespace and pod_name: Prometheus gives every scraped series `namespace` and
// `pod` of the handler replica that served it, and would rename clashing labels.
import type { V1Pod, V1PodCondition } from "@kubernetes/client-node";
import { Gauge, type Registry } from "prom-client";
import { RECOVERED_CONDITION } from "../names.ts";
import { isGated, isTerminating } from "./pod.ts";

export interface GatedPodSample {
  namespace: string;
  pod: string;
  status: string;
  reason: string;
  /** Seconds since the gate's last transition (or since the pod's creation, without a gate condition yet). */
  gateSeconds: number;
  /** For a Ready pod: seconds from its creation to its last turn to Ready. */
  readySeconds?: number;
}

/** One sample per gated, live pod: the pure core of the gauges. */
export function gatedPodSamples(pods: V1Pod[], now: Date): GatedPodSample[] {
  return pods
    .filter((pod) => isGated(pod) && !isTerminating(pod))
    .map((pod) => {
      const created = time(pod.metadata?.creationTimestamp);
      const gate = condition(pod, RECOVERED_CONDITION);
      const ready = condition(pod, "Ready");
      const since = time(gate?.lastTransitionTime) ?? created ?? now.getTime();
      const sample: GatedPodSample = {
        namespace: pod.metadata?.namespace ?? "",
        pod: pod.metadata?.name ?? "",
        status: gate?.status ?? "None",
        reason: gate?.reason ?? "None",
        gateSeconds: Math.max(0, (now.getTime() - since) / 1000),
      };
      const readyAt = time(ready?.lastTransitionTime);
      if (ready?.status === "True" && readyAt !== undefined && created !== undefined) {
        sample.readySeconds = Math.max(0, (readyAt - created) / 1000);
      }
      return sample;
    });
}

export function registerPodGauges(registry: Registry, pods: () => V1Pod[], now = () => new Date()): void {
  new Gauge({
    name: "coordinator_ha_handler_gated_pods",
    help: "Gated pods in the handler's cache by namespace and the recovered condition's status and reason (None: no condition yet).",
    labelNames: ["pod_namespace", "status", "reason"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of gatedPodSamples(pods(), now())) {
        this.inc({ pod_namespace: s.namespace, status: s.status, reason: s.reason });
      }
    },
  });
  new Gauge({
    name: "coordinator_ha_handler_pod_gate_seconds",
    help: "Seconds since a gated pod's recovered condition last changed, with its status and reason: how long a pod has been waiting, stale or recovered.",
    labelNames: ["pod_namespace", "pod_name", "status", "reason"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of gatedPodSamples(pods(), now())) {
        this.set(
          { pod_namespace: s.namespace, pod_name: s.pod, status: s.status, reason: s.reason },
          s.gateSeconds,
        );
      }
    },
  });
  new Gauge({
    name: "coordinator_ha_handler_pod_time_to_ready_seconds",
    help: "For a Ready gated pod: seconds from its creation to its last turn to Ready.",
    labelNames: ["pod_namespace", "pod_name"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of gatedPodSamples(pods(), now())) {
        if (s.readySeconds !== undefined)
          this.set({ pod_namespace: s.namespace, pod_name: s.pod }, s.readySeconds);
      }
    },
  });
}

function condition(pod: V1Pod, type: string): V1PodCondition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

function time(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === "string" ? Date.parse(value) : value.getTime();
  return Number.isNaN(ms) ? undefined : ms;
}
