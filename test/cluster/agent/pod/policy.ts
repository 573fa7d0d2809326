// Restart decisions, as pkg/api/v1/pod/util.go and pkg/kubelet/container/helpers.go make
// them in Kubernetes 1.35 (ContainerRestartRules is beta and on by default there).
import type { Container, Pod } from "../kube/wire.ts";
import type { ContainerRecord } from "./types.ts";

/** A native sidecar: an init container with restartPolicy Always. */
export function isRestartableInitContainer(c: Container): boolean {
  return c.restartPolicy === "Always";
}

function findMatchingRestartRule(c: Container, exitCode: number) {
  for (const rule of c.restartPolicyRules ?? []) {
    if (!rule.exitCodes) continue;
    const matched = (rule.exitCodes.values ?? []).includes(exitCode);
    if (rule.exitCodes.operator === "In" && matched) return rule;
    if (rule.exitCodes.operator === "NotIn" && !matched) return rule;
  }
  return undefined;
}

/** podutil.ContainerShouldRestart: container rules, then container policy, then pod policy. */
export function containerShouldRestart(c: Container, pod: Pod, exitCode: number): boolean {
  if (c.restartPolicy !== undefined) {
    // RestartAllContainers is alpha and off in 1.35: it falls back to the container policy.
    if (findMatchingRestartRule(c, exitCode)?.action === "Restart") return true;
    switch (c.restartPolicy) {
      case "Always":
        return true;
      case "OnFailure":
        return exitCode !== 0;
      case "Never":
        return false;
    }
  }
  switch (pod.spec?.restartPolicy) {
    case "OnFailure":
      return exitCode !== 0;
    case "Never":
      return false;
    default:
      return true;
  }
}

/** The latest run of a container, as the CRI lists them (newest first). */
export function latestRecord(records: readonly ContainerRecord[], name: string): ContainerRecord | undefined {
  let latest: ContainerRecord | undefined;
  for (const r of records) {
    if (r.name === name && (!latest || r.createdAt > latest.createdAt)) latest = r;
  }
  return latest;
}

/** kubecontainer.ShouldContainerBeRestarted: should the next sync (re)start this container? */
export function shouldContainerBeRestarted(
  c: Container,
  pod: Pod,
  records: readonly ContainerRecord[],
): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  const latest = latestRecord(records, c.name);
  if (!latest) return true;
  if (latest.state === "running") return false;
  return containerShouldRestart(c, pod, latest.exitCode ?? 0);
}
