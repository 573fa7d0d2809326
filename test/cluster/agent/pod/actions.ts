// What a sync of a running pod must do, decided as the kubelet's computePodActions and
// computeInitContainerActions (pkg/kubelet/kuberuntime) decide it: which init container
// runs next, when a native sidecar lets the next container start (once it started, or once
// its startup probe succeeded), which containers to restart, which to kill after a failed
// liveness or startup probe, and when the whole pod is done.
import type { Container, Pod } from "../kube/wire.ts";
import { isRestartableInitContainer, latestRecord, shouldContainerBeRestarted } from "./policy.ts";
import type { ProbeResult } from "./probes.ts";
import type { ContainerRecord } from "./types.ts";

export interface KillAction {
  id: string;
  name: string;
  /** The kubelet's Killing event message. */
  message: string;
}

export interface PodActions {
  /** Indices into spec.initContainers, in spec order. */
  initContainersToStart: number[];
  /** Indices into spec.containers. */
  containersToStart: number[];
  containersToKill: KillAction[];
  /** Every container is done (or an init container failed for good): stop the pod. */
  killPod: boolean;
}

export interface ProbeResults {
  startup(id: string): ProbeResult | undefined;
  liveness(id: string): ProbeResult | undefined;
}

function initContainerActions(
  pod: Pod,
  records: readonly ContainerRecord[],
  probes: ProbeResults,
  actions: PodActions,
): boolean {
  const inits = pod.spec?.initContainers ?? [];
  if (inits.length === 0) return true;
  const regular = pod.spec?.containers ?? [];
  let podHasInitialized = regular.some((c) => latestRecord(records, c.name)?.state === "running");
  let previouslyInitialized = podHasInitialized;
  const toStart: number[] = [];

  // Backwards, as the kubelet goes: the last init container that ran is the frontier, and
  // the ones before it only matter if they are sidecars that must keep running.
  for (let i = inits.length - 1; i >= 0; i--) {
    const c = inits[i]!;
    const sidecar = isRestartableInitContainer(c);
    const latest = latestRecord(records, c.name);
    if (!latest) {
      if (previouslyInitialized && sidecar) toStart.push(i);
      continue;
    }
    if (previouslyInitialized && !sidecar) continue;

    if (latest.state === "running") {
      if (sidecar) {
        const startup = c.startupProbe ? probes.startup(latest.id) : "Success";
        if (startup === "Failure") {
          actions.containersToKill.push({
            id: latest.id,
            name: c.name,
            message: `Init container ${c.name} failed startup probe`,
          });
          toStart.push(i);
        } else if (startup === "Success") {
          if (i === inits.length - 1) podHasInitialized = true;
          else if (!previouslyInitialized) toStart.push(i + 1);
          if (c.livenessProbe && probes.liveness(latest.id) === "Failure") {
            actions.containersToKill.push({
              id: latest.id,
              name: c.name,
              message: `Init container ${c.name} failed liveness probe`,
            });
            toStart.push(i);
          }
        }
      }
    } else if (sidecar) {
      toStart.push(i);
    } else if ((latest.exitCode ?? 0) !== 0) {
      if (!shouldContainerBeRestarted(c, pod, records)) {
        actions.killPod = true;
        actions.initContainersToStart = [];
        return false;
      }
      toStart.push(i);
    } else if (i === inits.length - 1) {
      podHasInitialized = true;
    } else {
      toStart.push(i + 1);
    }
    previouslyInitialized = true;
  }
  if (!previouslyInitialized) toStart.push(0);
  actions.initContainersToStart = toStart.reverse();
  return podHasInitialized;
}

/** The actions of one sync of a pod that is not being deleted. */
export function computePodActions(
  pod: Pod,
  records: readonly ContainerRecord[],
  probes: ProbeResults,
): PodActions {
  const actions: PodActions = {
    initContainersToStart: [],
    containersToStart: [],
    containersToKill: [],
    killPod: false,
  };
  const initialized = initContainerActions(pod, records, probes, actions);
  if (actions.killPod || !initialized) return actions;

  let keep = 0;
  (pod.spec?.containers ?? []).forEach((c: Container, idx) => {
    const latest = latestRecord(records, c.name);
    if (!latest || latest.state !== "running") {
      if (shouldContainerBeRestarted(c, pod, records)) actions.containersToStart.push(idx);
      return;
    }
    let message: string;
    if (probes.liveness(latest.id) === "Failure") message = `Container ${c.name} failed liveness probe`;
    else if (probes.startup(latest.id) === "Failure") message = `Container ${c.name} failed startup probe`;
    else {
      keep++;
      return;
    }
    const restart = c.restartPolicy ? c.restartPolicy !== "Never" : pod.spec?.restartPolicy !== "Never";
    if (restart) {
      message += ", will be restarted";
      actions.containersToStart.push(idx);
    }
    actions.containersToKill.push({ id: latest.id, name: c.name, message });
  });
  if (keep === 0 && actions.containersToStart.length === 0) {
    actions.killPod = true;
    actions.initContainersToStart = [];
  }
  return actions;
}
